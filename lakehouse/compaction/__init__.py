"""Pure planning of table maintenance: which small files to merge, which old files to drop."""
