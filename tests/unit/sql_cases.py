"""Shared cases for the interpreter's tests: a small schema view and the hostile SQL corpus.

Each hostile entry is (dialect, sql, expected error code). Every one must be refused with a 4xx
by the interpreter and over HTTP, whichever endpoint receives it.
"""

from __future__ import annotations

from typing import Any

from lakehouse.sql.schema_view import SchemaView

ORDERS = {"type": "struct", "fields": [
    {"name": "customer_id", "type": "int64"},
    {"name": "total", "type": "float64"},
    {"name": "city", "type": "string"},
    {"name": "items", "type": {"type": "list", "element": "string"}},
]}
CUSTOMERS = {"type": "struct", "fields": [
    {"name": "id", "type": "int64"},
    {"name": "name", "type": "string"},
    {"name": "city", "type": "string"},
    {"name": "profile", "type": {"type": "struct", "fields": [
        {"name": "age", "type": "int64"}, {"name": "vip", "type": "bool"}]}},
]}
SCHEMAS: dict[str, Any] = {"orders": ORDERS, "customers": CUSTOMERS}


def acme_view() -> SchemaView:
    return SchemaView.from_schemas("acme", SCHEMAS)


HOSTILE: list[tuple[str, str, str]] = [
    # writes and definitions
    ("duckdb", "DROP TABLE orders", "forbidden_statement"),
    ("duckdb", "delete from orders", "forbidden_statement"),
    ("duckdb", "DeLeTe FrOm orders WHERE 1=1", "forbidden_statement"),
    ("duckdb", "INSERT INTO orders SELECT * FROM orders", "forbidden_statement"),
    ("duckdb", "UPDATE orders SET total = 0", "forbidden_statement"),
    ("duckdb", "CREATE TABLE x AS SELECT * FROM orders", "forbidden_statement"),
    ("duckdb", "CREATE MACRO f(a) AS a", "forbidden_statement"),
    ("duckdb", "ALTER TABLE orders ADD COLUMN x INT", "forbidden_statement"),
    ("duckdb", "TRUNCATE orders", "forbidden_statement"),
    ("postgres", "MERGE INTO orders USING customers ON true WHEN MATCHED THEN DELETE",
     "forbidden_statement"),
    ("duckdb", "SELECT * INTO copy_of FROM orders", "forbidden_statement"),
    ("postgres", "WITH gone AS (DELETE FROM orders RETURNING *) SELECT * FROM gone",
     "forbidden_statement"),
    ("duckdb", "SELECT * FROM orders FOR UPDATE", "forbidden_statement"),
    ("duckdb", "/* just a comment */ DROP TABLE orders", "forbidden_statement"),
    # configuration, extensions, other databases
    ("duckdb", "PRAGMA database_list", "forbidden_statement"),
    ("duckdb", "SET enable_external_access = true", "forbidden_statement"),
    ("duckdb", "RESET enable_external_access", "forbidden_statement"),
    ("duckdb", "ATTACH 'other.db' AS other", "forbidden_statement"),
    ("duckdb", "DETACH other", "forbidden_statement"),
    ("duckdb", "USE other", "forbidden_statement"),
    ("duckdb", "INSTALL httpfs", "forbidden_statement"),
    ("duckdb", "LOAD httpfs", "forbidden_statement"),
    ("duckdb", "CALL pragma_version()", "forbidden_statement"),
    ("duckdb", "COPY orders TO 'out.csv'", "forbidden_statement"),
    ("duckdb", "COPY (SELECT * FROM orders) TO 's3://bucket/x.parquet'", "forbidden_statement"),
    ("duckdb", "CHECKPOINT", "forbidden_statement"),
    ("duckdb", "VACUUM", "forbidden_statement"),
    ("duckdb", "DESCRIBE SELECT * FROM orders", "forbidden_statement"),
    ("duckdb", "DESCRIBE main.orders", "forbidden_statement"),
    ("duckdb", "SHOW TABLES", "forbidden_statement"),
    ("duckdb", "SUMMARIZE orders", "forbidden_statement"),
    ("duckdb", "BEGIN TRANSACTION", "forbidden_statement"),
    ("mysql", "SELECT @@version", "forbidden_statement"),
    # table functions and files, in every quoting
    ("duckdb", "SELECT * FROM read_parquet('/etc/passwd')", "forbidden_function"),
    ("duckdb", "SELECT * FROM READ_CSV_AUTO('data.csv')", "forbidden_function"),
    ("duckdb", "SELECT * FROM \"READ_PARQUET\"('x.parquet')", "forbidden_function"),
    ("mysql", "SELECT * FROM `read_csv`('x.csv')", "forbidden_function"),
    ("bigquery", "SELECT * FROM `read_json`('x.json')", "forbidden_function"),
    ("duckdb", "SELECT * FROM read_/**/text('/etc/passwd')", "unknown_table"),
    ("duckdb", "SELECT * FROM read_text('/etc/passwd')", "forbidden_function"),
    ("duckdb", "SELECT * FROM parquet_scan('x')", "forbidden_function"),
    ("duckdb", "SELECT * FROM glob('/*')", "forbidden_function"),
    ("duckdb", "SELECT * FROM sqlite_scan('x.db', 't')", "forbidden_function"),
    ("duckdb", "SELECT * FROM postgres_scan('host=x', 'public', 't')", "forbidden_function"),
    ("duckdb", "SELECT * FROM iceberg_scan('s3://b/t')", "forbidden_function"),
    ("duckdb", "SELECT * FROM query('SELECT 1')", "forbidden_function"),
    ("duckdb", "SELECT * FROM duckdb_settings()", "forbidden_function"),
    ("duckdb", "SELECT * FROM generate_series(1, 10)", "table_function"),
    ("duckdb", "SELECT * FROM range(1000000000000)", "table_function"),
    ("duckdb", "SELECT * FROM unnest([1, 2, 3])", "table_function"),
    ("duckdb", "SELECT * FROM my_macro(1)", "table_function"),
    ("duckdb", "SELECT * FROM orders, LATERAL read_csv('x')", "forbidden_function"),
    ("duckdb", "FROM read_csv('x.csv')", "forbidden_function"),
    ("duckdb", "SELECT * FROM 'data.parquet'", "file_access"),
    ("duckdb", "FROM 's3://bucket/key.csv'", "file_access"),
    ("duckdb", "SELECT * FROM 'https://example.com/x.csv'", "file_access"),
    ("duckdb", "SELECT * FROM \"/etc/passwd\"", "file_access"),
    ("tsql", "SELECT * FROM OPENROWSET('MSDASQL', 'Driver=x', 'SELECT 1')",
     "forbidden_function"),
    ("tsql", "SELECT * FROM OPENROWSET(BULK 'x.csv')", "syntax_error"),
    # hidden inside an otherwise fine query
    ("duckdb", "SELECT * FROM orders WHERE city IN (SELECT * FROM read_csv('x'))",
     "forbidden_function"),
    ("duckdb", "WITH x AS (SELECT * FROM read_parquet('y')) SELECT * FROM x",
     "forbidden_function"),
    ("duckdb", "SELECT city FROM orders UNION SELECT * FROM read_csv('x')",
     "forbidden_function"),
    ("duckdb", "SELECT (SELECT content FROM read_text('/etc/passwd')) FROM orders",
     "forbidden_function"),
    ("duckdb", "SELECT * FROM orders JOIN read_json('x') AS j ON true", "forbidden_function"),
    ("duckdb", "SELECT * FROM orders WHERE 'x'.read_text() IS NOT NULL", "forbidden_function"),
    ("duckdb", "SELECT list_transform([1], x -> getenv('a'))", "forbidden_function"),
    ("duckdb", "SELECT * FROM TABLE(read_csv('x'))", "table_function"),
    ("duckdb", "SELECT * FROM orders, json_each('[1]')", "table_function"),
    ("clickhouse", "SELECT * FROM url('http://x', CSV)", "forbidden_function"),
    ("clickhouse", "SELECT * FROM file('x.csv')", "forbidden_function"),
    ("clickhouse", "SELECT * FROM remote('h', db.t)", "table_function"),
    ("snowflake", "SELECT * FROM orders AT (TIMESTAMP => '2020-01-01'::timestamp)",
     "unsupported_time_travel"),  # only AT (VERSION => N): a snapshot, not a moment
    ("duckdb", "SELECT * FROM orders FOR SYSTEM_TIME AS OF 3", "unsupported_time_travel"),
    ("duckdb", "EXPLAIN SELECT * FROM orders", "forbidden_statement"),
    ("duckdb", "PIVOT orders ON city", "forbidden_statement"),
    ("duckdb", "SELECT * FROM orders WHERE city = $1", "unsupported_parameter"),
    # settings and environment
    ("duckdb", "SELECT getenv('HOME')", "forbidden_function"),
    ("duckdb", "SELECT GETENV('HOME') FROM orders", "forbidden_function"),
    ("duckdb", "SELECT current_setting('access_mode')", "forbidden_function"),
    ("postgres", "SELECT set_config('a', 'b', false)", "forbidden_function"),
    ("postgres", "SELECT pg_read_file('/etc/passwd')", "forbidden_function"),
    ("duckdb", "SELECT json_execute_serialized_sql('x')", "forbidden_function"),
    ("duckdb", "SELECT * FROM orders WHERE city = current_setting('x')", "forbidden_function"),
    # other catalogs, schemas and tenants
    ("duckdb", "SELECT * FROM other.orders", "qualified_table"),
    ("duckdb", "SELECT * FROM tenant_b.orders", "qualified_table"),
    ("duckdb", "SELECT * FROM \"tenant_globex\".\"orders\"", "qualified_table"),
    ("duckdb", "SELECT * FROM memory.main.orders", "qualified_table"),
    ("duckdb", "SELECT * FROM a.b.c.orders", "qualified_table"),
    ("duckdb", "SELECT * FROM information_schema.tables", "qualified_table"),
    ("duckdb", "SELECT * FROM pg_catalog.pg_tables", "qualified_table"),
    ("bigquery", "SELECT * FROM `project.dataset.orders`", "qualified_table"),
    ("tsql", "SELECT * FROM [otherdb].[dbo].[orders]", "qualified_table"),
    ("duckdb", "SELECT * FROM orders o JOIN globex.customers c ON true", "qualified_table"),
    # tables that are not the tenant's, and more than one statement
    ("duckdb", "SELECT * FROM duckdb_tables", "unknown_table"),
    ("duckdb", "SELECT * FROM sqlite_master", "unknown_table"),
    ("duckdb", "SELECT * FROM secret", "unknown_table"),
    ("duckdb", "SELECT 1; DROP TABLE orders", "multiple_statements"),
    ("duckdb", "SELECT * FROM orders -- fine\n; DELETE FROM orders", "multiple_statements"),
    ("duckdb", "SELECT 1; SELECT 2", "multiple_statements"),
]

ACCEPTED: list[tuple[str, str]] = [
    ("duckdb", "SELECT * FROM orders"),
    ("duckdb", "select city, count(*) from ORDERS group by city order by 2 desc limit 3"),
    ("duckdb", "WITH big AS (SELECT * FROM orders WHERE total > 10) SELECT city FROM big"),
    ("duckdb", "SELECT city FROM orders UNION SELECT city FROM customers"),
    ("duckdb", "SELECT city FROM orders INTERSECT SELECT city FROM customers"),
    ("duckdb", "SELECT city FROM orders EXCEPT SELECT city FROM customers"),
    ("duckdb", "SELECT c.name, o.total FROM orders o JOIN customers c ON o.customer_id = c.id"),
    ("duckdb", "SELECT * FROM (VALUES (1, 'a')) AS v(n, s)"),
    ("duckdb", "SELECT c.profile.age FROM customers c WHERE c.profile.vip"),
    ("duckdb", "SELECT len(items), items[1] FROM orders"),
    ("duckdb", "SELECT upper(city), total * 2 FROM orders WHERE city LIKE 'O%'"),
    ("duckdb", "SELECT city, sum(total) OVER (PARTITION BY city) FROM orders"),
    ("duckdb", "SELECT * FROM orders WHERE customer_id IN (SELECT id FROM customers)"),
    ("duckdb", "/* a comment */ SELECT data_id, _timestamp FROM orders -- and another"),
    ("postgres", "SELECT city, total::int FROM orders"),
    ("mysql", "SELECT `city` FROM `orders` LIMIT 5"),
    ("tsql", "SELECT TOP 5 city FROM orders"),
    ("bigquery", "SELECT city FROM orders WHERE total > 1"),
    ("snowflake", "SELECT city FROM orders QUALIFY ROW_NUMBER() OVER (ORDER BY total) = 1"),
]
