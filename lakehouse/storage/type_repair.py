"""Finding and repairing data files whose column types the table cannot read.

Before the catalog kept exact types, a load stored decimals as float64 and timestamps as text
in the catalog's schema while its files held the exact types, and JSON records written later
were flushed in those shadow types: the table's files then disagreed (`ts` a timestamp in one
file, text in the next) and every query of it failed. This check, run by the hourly
`housekeeping` deployment, repairs such tables:

1. The catalog's schema is upgraded to the exact type the files hold where the catalog has
   only its JSON shadow (float64 for a decimal; string for a timestamp, date or time).
2. A file whose column is in another type than the table's is rewritten in the table's types,
   each value converted as a record written now would be (`lakehouse.schema.coerce`), and
   swapped for the old file in one snapshot ("repair"; same rows, so no data change).
3. A file with a value that does not convert (text that is no timestamp) is quarantined: it
   leaves the table's live files in that snapshot — out of every query — and is kept as a copy
   beside it (`….parquet.quarantined`, which cleanup never deletes); the snapshot's summary
   keeps its path, the copy's and the reason, and `GET /metadata/tables` lists it under the
   table. Rewriting is preferred because it loses nothing; a quarantined file's rows are out of
   queries but not lost: an operator can read the copy, fix it and load it again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse.catalog.lake import AddFiles, Catalog, Commit, DataFile, RemoveFiles, SetSchema
from lakehouse.errors import Conflict, InvalidInput
from lakehouse.ingest.flush_rows import SYSTEM_FIELDS, file_schema
from lakehouse.schema.coerce import coerce_value
from lakehouse.schema.evolve import INT64_DIGITS, Changes, merge_types
from lakehouse.schema.types import (
    EXACT_KINDS,
    NULL_TYPE,
    ROOT,
    FieldType,
    Kind,
    from_arrow,
    json_shadow,
    struct_of,
)
from lakehouse.storage.location import StorageRoot
from lakehouse.storage.parquet_files import column_stats, write_file

log = logging.getLogger(__name__)

REPAIR_KIND = "repair"
# The copy a quarantined file is kept as: cleanup deletes the file itself once no snapshot
# needs it, and only ever deletes *.parquet objects, so the copy stays until someone acts.
QUARANTINE_SUFFIX = ".quarantined"
_SYSTEM = {f.name for f in SYSTEM_FIELDS}


@dataclass
class TableRepair:
    tenant: str
    table: str
    upgraded: dict[str, str] = field(default_factory=dict)  # column → its exact type
    rewritten: list[str] = field(default_factory=list)  # paths of files rewritten
    quarantined: list[dict[str, str]] = field(default_factory=list)  # {path, reason}

    @property
    def changed(self) -> bool:
        return bool(self.upgraded or self.rewritten or self.quarantined)

    def to_json(self) -> dict[str, Any]:
        return {"table": f"{self.tenant}/{self.table}", "upgraded": self.upgraded,
                "rewritten": self.rewritten, "quarantined": self.quarantined}


def repair_tables(catalog: Catalog, storage: StorageRoot, tenant: str | None = None,
                  ) -> list[TableRepair]:
    """Check every table (of `tenant`, or all) and repair those whose files disagree."""
    done = []
    for info in catalog.tables(tenant):
        try:
            repair = repair_table(catalog, storage, info.tenant, info.name)
        except Conflict:  # a load or flush changed the table meanwhile: checked next run
            log.info("a table changed while it was checked; next run checks it again",
                     extra={"table": f"{info.tenant}/{info.name}"})
            continue
        if repair.changed:
            done.append(repair)
    return done


def repair_table(catalog: Catalog, storage: StorageRoot, tenant: str, name: str,
                 ) -> TableRepair:
    repair = TableRepair(tenant, name)
    info = catalog.table(tenant, name)
    if info is None:
        return repair
    schema = FieldType.from_json(info.schema)
    files = catalog.files(tenant, name)
    footers = {f.path: _user_columns(pq.read_schema(storage.full(f.path), filesystem=storage.fs))
               for f in files}
    upgraded = _upgraded(schema, footers.values())
    for column, kind in upgraded.fields:
        if schema.field(column) != kind:
            repair.upgraded[column] = kind.describe()
    stale = [f for f in files if not _reads_as(footers[f.path], upgraded)]
    if not stale and not repair.upgraded:
        return repair
    removed: list[int] = []
    added: list[DataFile] = []
    for found in stale:
        try:
            added.append(_rewrite(storage, found, upgraded))
            repair.rewritten.append(found.path)
        except InvalidInput as exc:
            kept = found.path + QUARANTINE_SUFFIX
            storage.fs.copy_file(storage.full(found.path), storage.full(kept))
            repair.quarantined.append({"path": found.path, "kept_at": kept,
                                       "reason": exc.message[:500]})
        assert found.file_id is not None  # noqa: S101 - files read from the catalog have one
        removed.append(found.file_id)
    changes: list[Any] = []
    if upgraded != schema:
        changes.append(SetSchema(tenant, name, upgraded.to_json(), expected=info.schema))
    if removed:
        changes.append(RemoveFiles(tenant, name, tuple(removed)))
    if added:
        changes.append(AddFiles(tenant, name, tuple(added)))
    catalog.commit(Commit(REPAIR_KIND, tuple(changes), repair.to_json(), data_change=False))
    log.warning("repaired a table whose files disagreed with its types", extra=repair.to_json())
    return repair


def _user_columns(schema: pa.Schema) -> FieldType:
    fields = []
    for column in schema:
        if column.name in _SYSTEM:
            continue
        try:
            fields.append((column.name, from_arrow(column.type)))
        except ValueError:
            fields.append((column.name, NULL_TYPE))  # never written by us: read as nulls
    return struct_of(tuple(fields))


def _upgraded(schema: FieldType, footers: Iterable[FieldType]) -> FieldType:
    """The table's schema with each JSON shadow replaced by the exact type its files hold."""
    exact: dict[str, FieldType] = {}
    for footer in footers:
        for column, kind in footer.fields:
            if kind.kind not in EXACT_KINDS or schema.field(column) != json_shadow(kind):
                continue
            known = exact.get(column)
            if known is None:
                exact[column] = kind
                continue
            changes = Changes()
            merged = merge_types(known, kind, f"{ROOT}.{column}", changes)
            # Files that disagree on the exact type (two zones) leave the column as it is.
            exact[column] = merged if not changes.conflicts else schema.field(column) or kind
    if not exact:
        return schema
    return struct_of(tuple((column, exact.get(column, kind)) for column, kind in schema.fields))


def _reads_as(footer: FieldType, schema: FieldType) -> bool:
    """Whether a file's columns read as the table's types: as they are, or widened."""
    return all(schema.field(column) is None or _reads(kind, schema.field(column))
               for column, kind in footer.fields)


def _reads(kind: FieldType, target: FieldType | None) -> bool:
    if target is None or kind == target or kind.kind is Kind.NULL:
        return True
    if target.kind is Kind.FLOAT:
        return kind.kind is Kind.INT
    if target.kind is Kind.DECIMAL and kind.kind in (Kind.DECIMAL, Kind.INT):
        whole = kind.precision - kind.scale if kind.kind is Kind.DECIMAL else INT64_DIGITS
        return target.precision - target.scale >= whole and target.scale >= kind.scale
    if target.kind is Kind.LIST and kind.kind is Kind.LIST:
        return _reads(kind.element or NULL_TYPE, target.element)
    if target.kind is Kind.STRUCT and kind.kind is Kind.STRUCT:
        return all(target.field(name) is not None and _reads(inner, target.field(name))
                   for name, inner in kind.fields)
    return False


def _rewrite(storage: StorageRoot, found: DataFile, schema: FieldType) -> DataFile:
    """The file's rows in the table's types, written beside it; InvalidInput if a value does
    not convert."""
    rows = pq.read_table(storage.full(found.path), filesystem=storage.fs)
    layout = file_schema(schema)
    columns = []
    for target in layout:
        index = rows.schema.get_field_index(target.name)
        if index < 0:
            columns.append(pa.nulls(rows.num_rows, target.type))
            continue
        column = rows.column(index)
        if column.type == target.type:
            columns.append(column)
            continue
        kind = schema.field(target.name)
        shadow = from_arrow(column.type) != from_arrow(target.type) and kind is not None and (
            from_arrow(column.type) == json_shadow(kind))
        if shadow and kind is not None:  # JSON's text or float: converted as a record's value
            path = f"{ROOT}.{target.name}"
            values = [coerce_value(v, kind, path) for v in column.to_pylist()]
            columns.append(pa.chunked_array([pa.array(values, target.type)], target.type))
        else:  # another exact type: Arrow's safe cast, which refuses to lose anything
            try:
                columns.append(column.cast(target.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InvalidInput(f"column {target.name}: {str(exc)[:300]}",
                                   code="unconvertible_file") from exc
    table = pa.Table.from_arrays(columns, schema=layout)
    path = found.path.removesuffix(".parquet") + "-retyped.parquet"
    size = write_file(storage, path, table)
    return DataFile(path, found.partition, table.num_rows, size, found.seq_min, found.seq_max,
                    stats=column_stats(table))


def quarantined_files(summaries: Iterable[tuple[int, dict[str, Any]]], tenant: str,
                      table: str) -> list[dict[str, Any]]:
    """The files repairs took out of a table: from the summaries of its repair snapshots."""
    out: list[dict[str, Any]] = []
    for snapshot, summary in summaries:
        if summary.get("table") != f"{tenant}/{table}":
            continue
        out.extend({**entry, "snapshot": snapshot} for entry in summary.get("quarantined", []))
    return out

