"""A seeded random SQL generator and the differential harness around it.

Pure parts (no platform imports, no I/O): `schema` (random tables and rows), `queries` (random
queries over them), `compare` (the rules an answer is judged by), `reduce` (shrinking a failing
query). The rest drives the platform and DuckDB: `oracle` (plain DuckDB on the same rows),
`targets` (the platform in this process, or a running one over HTTP), `runner` (queries on both,
metamorphic checks, classes of failure, the report).
"""
