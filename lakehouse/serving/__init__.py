"""The ClickHouse serving store: an optional mirror of tables marked for it (DESIGN.md §4)."""
