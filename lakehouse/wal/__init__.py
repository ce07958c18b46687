"""Write-ahead log: the port, the RocksDB implementation and the in-memory one."""
