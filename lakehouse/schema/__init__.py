"""Record types: inference from JSON payloads and schema evolution. Pure: no I/O of any kind."""

from lakehouse.schema.evolve import Evolution, TypeConflict, evolve, evolve_many, merge_schemas
from lakehouse.schema.infer import MAX_DEPTH, infer
from lakehouse.schema.names import NAME_PATTERN, check_field_name, check_table_name
from lakehouse.schema.types import (
    BOOL_TYPE,
    FLOAT_TYPE,
    INT_TYPE,
    NULL_TYPE,
    STRING_TYPE,
    FieldType,
    Kind,
    TableSchema,
    list_of,
    struct_of,
)

__all__ = [
    "BOOL_TYPE",
    "FLOAT_TYPE",
    "INT_TYPE",
    "MAX_DEPTH",
    "NAME_PATTERN",
    "NULL_TYPE",
    "STRING_TYPE",
    "Evolution",
    "FieldType",
    "Kind",
    "TableSchema",
    "TypeConflict",
    "check_field_name",
    "check_table_name",
    "evolve",
    "evolve_many",
    "infer",
    "list_of",
    "merge_schemas",
    "struct_of",
]
