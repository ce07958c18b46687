"""Tables of the catalog database. Later parts (snapshots, files, statistics) join these."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    MetaData,
    String,
    Table,
    Text,
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
