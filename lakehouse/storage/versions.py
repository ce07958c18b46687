"""Which versions of a record are visible: an upsert replaces the earlier versions of its
data_id, so only the row with the highest `_seq` of each upserted data_id survives. (Ingestion
refuses any other repeat, so only upserts leave older versions behind.) Pure Arrow computation."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc


def replaced_versions(pieces: Sequence[pa.Table]) -> pa.Table:
    """(data_id, _seq) of the newest version of every upserted data_id, from the upsert rows
    (data_id, _seq, _upsert) of every piece of a relation."""
    upserts = [p.filter(pc.field("_upsert")).select(["data_id", "_seq"]) for p in pieces
               if p.num_rows]
    if not upserts:
        return pa.table({"data_id": pa.array([], pa.string()), "_seq": pa.array([], pa.int64())})
    return (pa.concat_tables(upserts).group_by("data_id").aggregate([("_seq", "max")])
            .rename_columns(["data_id", "_seq"]))


def drop_replaced(rows: pa.Table, replaced: pa.Table) -> pa.Table:
    """Rows whose data_id was upserted survive only as the newest version."""
    if replaced.num_rows == 0:
        return rows
    ids = replaced.column("data_id")
    involved = pc.is_in(rows.column("data_id"), value_set=ids.combine_chunks())
    if not pc.any(involved).as_py():
        return rows
    newest = pc.is_in(rows.column("_seq"), value_set=replaced.column("_seq").combine_chunks())
    return rows.filter(pc.or_(pc.invert(involved), newest))


def newest_versions(rows: pa.Table) -> pa.Table:
    """`rows` without the versions an upsert among them replaced."""
    if "_upsert" not in rows.column_names or not pc.any(rows.column("_upsert")).as_py():
        return rows
    return drop_replaced(rows, replaced_versions([rows]))
