"""The write path of the Tenant Node: records in, group-committed to the WAL, read back at once."""
