"""Rules for table and field names.

Names become Parquet column names and SQL identifiers, so they stay plain ASCII identifiers.
A leading '_' is kept for system columns and `data_id` is the record key, so neither can be a
user's top-level column.
"""

from __future__ import annotations

import re

from lakehouse.errors import InvalidInput

NAME_PATTERN: re.Pattern[str] = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")
RESERVED_COLUMNS = frozenset({"data_id"})
_DETAIL_LIMIT = 100  # a hostile name can be megabytes long; the error only echoes its start


def is_valid_name(name: object) -> bool:
    """Whether `name` fits NAME_PATTERN (1-63 ASCII letters, digits and '_', letter first)."""
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None


def check_table_name(name: str) -> str:
    if not is_valid_name(name):
        raise InvalidInput(
            "table names are 1-63 characters: ASCII letters, digits and '_', "
            "starting with a letter",
            code="invalid_table_name",
            details={"table": str(name)[:_DETAIL_LIMIT]},
        )
    return name


def check_field_name(name: str, path: str) -> str:
    """`name` if it may be a user field at `path`, the field's own path ("payload.profile.age").

    A path with at most one '.' and no '[]' ("payload.data_id") is a top-level column, where the
    reserved names are refused; nested fields may use them.
    """
    if not is_valid_name(name):
        raise InvalidInput(
            f"{path}: field names are 1-63 characters: ASCII letters, digits and '_', "
            "starting with a letter",
            code="invalid_field_name",
            details={"path": path, "field": str(name)[:_DETAIL_LIMIT]},
        )
    if name in RESERVED_COLUMNS and "[" not in path and path.count(".") <= 1:
        raise InvalidInput(
            f"{path}: {name!r} is reserved for the record key; it cannot be a payload column",
            code="invalid_field_name",
            details={"path": path, "field": name},
        )
    return name
