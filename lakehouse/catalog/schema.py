"""Tables of the catalog database. Later parts (snapshots, files, statistics) join these."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("username", String(128), primary_key=True),
    Column("tenant", String(63), nullable=False, index=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(256), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("family_id", String(32), nullable=False),
    Column("username", String(128), nullable=False),
    Column("issued_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Index("ix_refresh_tokens_family", "family_id"),
    Index("ix_refresh_tokens_expires", "expires_at"),
)

revoked_access_tokens = Table(
    "revoked_access_tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("expires_at", BigInteger, nullable=False, index=True),
)

declared_tables = Table(
    "declared_tables",
    metadata,
    Column("tenant", String(63), primary_key=True),
    Column("name", String(63), primary_key=True),
    Column("spec", Text, nullable=False),  # DeclaredTable.to_json()
    Column("created_at", BigInteger, nullable=False),
)

table_options = Table(
    "table_options",
    metadata,
    Column("tenant", String(63), primary_key=True),
    Column("name", String(63), primary_key=True),
    Column("spec", Text, nullable=False),  # TableOptions.to_json()
    Column("updated_at", BigInteger, nullable=False),
)

# The snapshot catalog of the lakehouse (lakehouse/catalog/lake.py). Nothing here is updated in
# place except the end of a life (dropped_snapshot, snapshot_removed) and the watermarks, so any
# snapshot's view is a query. Ids are never reused (AUTOINCREMENT on SQLite, sequences on
# PostgreSQL): a stale id held by a long compaction must not name a newer file.
_Id = BigInteger().with_variant(Integer(), "sqlite")

lake_snapshots = Table(
    "lake_snapshots",
    metadata,
    # Assigned by the committer under the commit lock, so ids are gap-free (no sequence).
    Column("snapshot_id", BigInteger, primary_key=True, autoincrement=False),
    Column("created_at", Double, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("data_change", Boolean, nullable=False),
    Column("summary", Text, nullable=False),  # JSON
    Index("ix_lake_snapshots_kind", "kind", "snapshot_id"),
)

lake_tables = Table(
    "lake_tables",
    metadata,
    Column("table_id", _Id, primary_key=True, autoincrement=True),
    Column("tenant", String(63), nullable=False),
    Column("name", String(63), nullable=False),
    Column("partition_by", String(255)),
    Column("sort_key", Text, nullable=False),  # JSON list of column names
    Column("created_snapshot", BigInteger, nullable=False),
    Column("dropped_snapshot", BigInteger),
    Index("ix_lake_tables_name", "tenant", "name", "created_snapshot"),
    # At most one live table per name; a dropped name can be created again.
    Index("ux_lake_tables_live", "tenant", "name", unique=True,
          sqlite_where=text("dropped_snapshot IS NULL"),
          postgresql_where=text("dropped_snapshot IS NULL")),
    sqlite_autoincrement=True,
)

lake_schema_versions = Table(
    "lake_schema_versions",
    metadata,
    Column("table_id", _Id, ForeignKey("lake_tables.table_id"), primary_key=True),
    Column("begin_snapshot", BigInteger, primary_key=True),
    Column("schema", Text, nullable=False),  # JSON
)

# TableInfo.user_keys, versioned like the schema. A table without a row here was created by a
# catalog older than the table (its keys were always shown): it reads true.
lake_table_keys = Table(
    "lake_table_keys",
    metadata,
    Column("table_id", _Id, ForeignKey("lake_tables.table_id"), primary_key=True),
    Column("begin_snapshot", BigInteger, primary_key=True),
    Column("user_keys", Boolean, nullable=False),
)

lake_data_files = Table(
    "lake_data_files",
    metadata,
    Column("file_id", _Id, primary_key=True, autoincrement=True),
    Column("table_id", _Id, ForeignKey("lake_tables.table_id"), nullable=False),
    # Unique over live and dead rows alike: cleanup deletes a dead row's object by this path.
    Column("path", String(1024), nullable=False, unique=True),
    Column("partition", String(255), nullable=False),
    Column("row_count", BigInteger, nullable=False),
    Column("byte_size", BigInteger, nullable=False),
    Column("seq_min", BigInteger),
    Column("seq_max", BigInteger),
    Column("snapshot_added", BigInteger, nullable=False),
    Column("snapshot_removed", BigInteger),
    # files(table, N): added <= N, then filter on removed; file_containing: seq range.
    Index("ix_lake_data_files_table", "table_id", "snapshot_added"),
    Index("ix_lake_data_files_seq", "table_id", "seq_min"),
    Index("ix_lake_data_files_removed", "snapshot_removed"),
    sqlite_autoincrement=True,
)

lake_file_column_stats = Table(
    "lake_file_column_stats",
    metadata,
    Column("file_id", _Id, ForeignKey("lake_data_files.file_id"), primary_key=True),
    Column("ordinal", Integer, primary_key=True),  # keeps the order the writer gave
    Column("column_name", String(255), nullable=False),
    Column("min_value", Text, nullable=False),  # JSON: null, number, string or bool
    Column("max_value", Text, nullable=False),
    Column("null_count", BigInteger, nullable=False),
    Column("distinct_estimate", BigInteger),
)

lake_watermarks = Table(
    "lake_watermarks",
    metadata,
    Column("writer", String(255), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("snapshot_id", BigInteger, nullable=False),  # the commit that set it
)
