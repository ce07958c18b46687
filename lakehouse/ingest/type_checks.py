"""Whether records' types fit their table, decided for a plan (pure: the caller looks up the
table's schema and declaration).

Records that do not fit become rejects in the plan, with the exact reason; the schema the
accepted ones evolve the table to is put in the plan, to be written with them. Where the table
has exact columns (decimals, timestamps, dates, times) each record's values are converted into
them here, before it is acknowledged, by the function the flush uses again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lakehouse.errors import InvalidInput
from lakehouse.ingest.batch_types import batch_array, batch_type
from lakehouse.ingest.keys import TableRef
from lakehouse.ingest.plan import RecordResult, WritePlan, raw_record, reason_of
from lakehouse.ingest.records import IncomingRecord, Rejected
from lakehouse.schema import FieldType, evolve, infer, merge_schemas
from lakehouse.schema.coerce import coerce_payload
from lakehouse.schema.declared import DeclaredTable
from lakehouse.schema.value_checks import failing_records

Items = list[tuple[IncomingRecord, bytes]]  # records with their record keys


def check_types(plan: WritePlan, ref: TableRef, schema: FieldType | None, items: Items) -> Items:
    """The records whose types fit the table's `schema` (evolving it); the rest become rejects."""
    exact = schema is not None and schema.exact
    if not exact and all(record.payload_type is None for record, _ in items):
        typed = batch_array([record.payload for record, _ in items])
        if typed is not None:
            evolution = evolve(schema, typed[0])
            if not evolution.conflicts:
                if evolution.changed or schema is None:
                    plan.schemas[ref] = evolution.schema
                plan.arrays[ref] = typed[1]  # stored as is: no per-record encoding
                return items
    accepted = []
    for record, key in items:  # one by one, to say exactly which records do not fit
        try:
            payload_type = record.payload_type or infer(record.payload)
        except InvalidInput as exc:
            reject(plan, record, exc.code, reason_of(exc))
            continue
        evolution = evolve(schema, payload_type)
        if evolution.conflicts:
            reject(plan, record, "type_conflict",
                   "; ".join(c.reason() for c in evolution.conflicts))
            continue
        if evolution.schema.exact:
            try:
                coerce_payload(record.payload, evolution.schema)
            except InvalidInput as exc:
                reject(plan, record, exc.code, reason_of(exc))
                continue
        if evolution.changed or schema is None:
            schema = plan.schemas[ref] = evolution.schema
        accepted.append((record, key))
    return accepted


def check_declared(plan: WritePlan, ref: TableRef, declared: DeclaredTable,
                   schema: FieldType | None, items: Items) -> Items:
    """Records must fit the declared types, carry the required fields and pass the checks;
    `schema` is the table's schema as stored so far. A table that is not strict also keeps the
    fields its declaration does not name: they evolve the table's schema as any record's do."""
    table = merge_schemas(declared.columns, schema) or declared.columns
    fits = False
    if declared.strict and not table.exact and all(
            record.payload_type is None for record, _ in items):
        whole = batch_type([record.payload for record, _ in items])
        fits = whole is not None and declared.type_problem(whole) is None
    typed = []
    checked: list[Mapping[str, Any]] = []  # what the checks see: exact columns converted
    for record, key in items:
        payload = record.payload
        if not fits:
            evolved = _fit_declared(plan, declared, table, record)
            if evolved is None:
                continue
            table = evolved
        if table.exact:
            try:
                payload = coerce_payload(record.payload, table)
            except InvalidInput as exc:
                reject(plan, record, exc.code, reason_of(exc))
                continue
        missing = declared.missing_required(record.payload)
        if missing:
            reject(plan, record, "missing_required",
                   "required fields are missing or null: " + ", ".join(
                       f"payload.{m}" for m in missing))
            continue
        typed.append((record, key))
        checked.append(payload)
    failing = failing_records(declared, checked)
    accepted = []
    for position, (record, key) in enumerate(typed):
        if position in failing:
            reject(plan, record, "check_failed", failing[position])
        else:
            accepted.append((record, key))
    if accepted and schema != table:
        plan.schemas[ref] = table
    return accepted


def _fit_declared(plan: WritePlan, declared: DeclaredTable, table: FieldType,
                  record: IncomingRecord) -> FieldType | None:
    """The table's schema with the record's fields, or None having rejected the record."""
    try:
        record_type = record.payload_type or infer(record.payload)
    except InvalidInput as exc:
        reject(plan, record, exc.code, reason_of(exc))
        return None
    problem = declared.type_problem(record_type)
    if problem is not None:
        reject(plan, record, "schema_mismatch", problem)
        return None
    evolution = evolve(table, record_type)
    if evolution.conflicts:  # an undeclared field against the table's own columns
        reject(plan, record, "type_conflict", "; ".join(c.reason() for c in evolution.conflicts))
        return None
    return evolution.schema


def reject(plan: WritePlan, record: IncomingRecord, code: str, reason: str) -> None:
    plan.rejects.append(Rejected(record.index, record.data_id, record.table, reason, code,
                                 raw_record(record)))
    plan.results.append(RecordResult(record.index, record.data_id, record.table,
                                     "rejected", reason=reason, code=code))
