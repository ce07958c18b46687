"""A guarded, tenant-bound query as ClickHouse SQL over the tenant's mirrors (pure).

The interpreter's tree names each table as `tenant_<tenant>.<table>`; here each becomes a
subquery of the rows of its mirror `<prefix><tenant>.<table>` the query sees (`visible`): those
of the files live at the query's snapshot, without the versions an upsert replaced and the rows
the table's retention hides. sqlglot writes the ClickHouse dialect. What ClickHouse would
answer differently is refused with the reason (`NotRoutable`): the caller runs the query on the
default engine instead, or, when ClickHouse was asked for, answers 400 with the reason.

Then the SQL is read back and checked: only the mirrors of the query's own tables, no table
function, no SETTINGS, FORMAT or INTO OUTFILE — the reader is read-only, but `readonly` does not
stop the scalar `file()` function, so nothing reaches ClickHouse that this module did not write.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.schema import MappingSchema

from lakehouse.errors import InvalidInput
from lakehouse.serving.columns import MIRROR_FILE, quote

DIALECT = "clickhouse"

# The semantics the default engine has, asked of ClickHouse: outer joins fill with NULL (not a
# type's default), an aggregate of no rows is NULL (count stays 0).
READ_SETTINGS: dict[str, int | str] = {
    "join_use_nulls": 1,
    "aggregate_functions_null_for_empty": 1,
    "union_default_mode": "DISTINCT",
    "cast_keep_nullable": 1,
    # Mixed types find a common type or fail (ClickHouse would answer a union of types).
    "use_variant_as_common_type": 0,
}

# The functions whose ClickHouse form answers as DuckDB does (checked by
# tests/flows/test_clickhouse_route.py); any other is refused. Connectives and CASE are
# functions to sqlglot.
_SAME: tuple[type[exp.Expr], ...] = (
    exp.And, exp.Or, exp.Xor, exp.Case, exp.If, exp.Coalesce, exp.Nullif, exp.Cast,
    exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.Exists,
    exp.Abs, exp.Floor, exp.Ceil, exp.Sqrt, exp.Ln, exp.Exp,
    exp.Concat, exp.Length, exp.Substring, exp.Trim,
    exp.Extract, exp.Year, exp.Month, exp.Day, exp.TimestampTrunc, exp.DateTrunc,
    exp.Rank, exp.DenseRank, exp.RowNumber,
)
_WIDER = {
    exp.DataType.Type.DATE: "Date32",
    exp.DataType.Type.TIMESTAMP: "DateTime64(6)",
    exp.DataType.Type.DATETIME: "DateTime64(6)",
    exp.DataType.Type.TIMESTAMPNTZ: "DateTime64(6)",
    exp.DataType.Type.TIMESTAMP_MS: "DateTime64(3)",
    exp.DataType.Type.TIMESTAMP_S: "DateTime64(0)",
    exp.DataType.Type.TIMESTAMP_NS: "DateTime64(9)",
    exp.DataType.Type.TIMESTAMPTZ: "DateTime64(6, 'UTC')",
}
# Known to answer otherwise: said by name.
_DIFFERENT: dict[type[exp.Expr], str] = {
    exp.Lower: "lower() changes only ASCII letters in ClickHouse",
    exp.Upper: "upper() changes only ASCII letters in ClickHouse",
    exp.Round: "round() rounds halves to even in ClickHouse",
}


class NotRoutable(InvalidInput):
    """A query the ClickHouse route would answer differently, or cannot run."""


def not_routable(reason: str, **details: object) -> NotRoutable:
    return NotRoutable(f"the query cannot run on ClickHouse: {reason}; without "
                       "\"engine\": \"clickhouse\" it runs on the default engine",
                       code="not_routable", details={"reason": reason, **details})


@dataclass(frozen=True, slots=True)
class MirrorView:
    """What a query at one snapshot sees of a table's mirror."""

    files: tuple[int, ...]  # the ids of the files live at the snapshot
    upserts: bool = False  # some of them hold an upsert: it replaces older versions
    cutoff: int | None = None  # retention: the oldest `_timestamp` (microseconds) kept


def visible(database: str, table: str, view: MirrorView, files: str = "files") -> exp.Select:
    """The mirror's rows a query sees, as our own scans see the table's files
    (lakehouse/storage/versions.py): a row of an upserted data_id only as its newest version;
    the rows of files a compaction replaced (kept until pruned) not at all. The ids of the
    live files are the query parameter `files` (`view.files`): a table of thousands of files
    is not written into the SQL, to be parsed again and again."""
    mirror = f"{quote(database, database=True)}.{quote(table)}"
    live = exp.Placeholder(this=exp.var(files),
                           kind=exp.DataType.build("Array(UInt64)", dialect=DIALECT))
    held = exp.func("has", live, exp.column(MIRROR_FILE, quoted=True), dialect=DIALECT)
    kept = exp.select("*").from_(mirror, dialect=DIALECT).where(held)
    if view.cutoff is not None:
        kept = kept.where(
            f"`_timestamp` >= fromUnixTimestamp64Micro(toInt64({int(view.cutoff)}), 'UTC')",
            dialect=DIALECT)
    if view.upserts:
        def upserted(what: str) -> exp.Select:
            return (exp.select(what, dialect=DIALECT).from_(mirror, dialect=DIALECT)
                    .where(held.copy()).where("`_upsert`", dialect=DIALECT))

        newest = upserted("max(`_seq`)").group_by("`data_id`", dialect=DIALECT)
        kept = kept.where(exp.paren(exp.or_(
            exp.not_(exp.column("data_id", quoted=True).isin(query=upserted("`data_id`"))),
            exp.column("_seq", quoted=True).isin(query=newest))))
    return kept


@dataclass(frozen=True, slots=True)
class Written:
    """A query as ClickHouse SQL and the values of its parameters."""

    sql: str
    parameters: dict[str, list[int]]


def to_clickhouse(tree: exp.Expr, schema: str, database: str,
                  views: Mapping[str, MirrorView], types: MappingSchema) -> Written:
    """`tree` (bound to `schema`) as ClickHouse SQL over the mirrors in `database`, each table
    seen as `views` says (a table not there: no rows); `types`: its tables' columns and DuckDB
    types (SchemaView.mapping_schema)."""
    tree = tree.copy()
    _refuse_what_differs(tree)
    _exact_integers(tree, types)
    for node in list(tree.find_all(exp.Not)):
        if isinstance(node.this, exp.In):
            node.replace(_not_in(node.this))
    for select in tree.find_all(exp.Select):
        _unique_aliases(select)
    for number in list(tree.find_all(exp.Literal)):
        _exact_number(number)
    for cut in list(tree.find_all(exp.Substring)):  # characters, not bytes
        cut.replace(exp.Anonymous(this="substringUTF8", expressions=[
            a.copy() for a in (cut.this, cut.args.get("start"), cut.args.get("length")) if a]))
    for cast in tree.find_all(exp.Cast):
        wider = _WIDER.get(cast.to.this)
        if wider is not None:  # Date is 1970-2149 and DateTime whole seconds in ClickHouse
            cast.set("to", exp.DataType.build(wider, dialect=DIALECT))
    for div in list(tree.find_all(exp.Div)):
        # `/` is a DOUBLE division in DuckDB, decimals included; ClickHouse keeps a decimal
        # dividend's scale.
        for side in ("this", "expression"):
            operand = div.args[side]
            div.set(side, exp.cast(operand.copy(), exp.DataType.build("DOUBLE")))
    tables: dict[str, str] = {}  # table → the parameter of its files
    for table in list(tree.find_all(exp.Table)):
        if table.db != schema:
            continue  # a CTE's name
        files = tables.setdefault(table.name, f"files_{len(tables)}")
        # Always a subquery: ClickHouse lets a table be named by its own name beside its alias,
        # so a correlated reference to the outer `t` would bind to an inner `t AS u`.
        kept = visible(database, table.name, views.get(table.name, MirrorView(())), files)
        table.replace(kept.subquery(exp.to_identifier(table.alias_or_name, quoted=True)))
    sql = tree.sql(dialect=DIALECT)
    check_written(sql, database, set(tables))
    return Written(sql, {files: [int(f) for f in views.get(name, MirrorView(())).files]
                         for name, files in tables.items()})


_WIDE_SUM = "Decimal(38, 0)"
_CHECKED = {exp.DataType.Type.BIGINT: "Nullable(Int64)",
            exp.DataType.Type.UBIGINT: "Nullable(UInt64)"}


def _exact_integers(tree: exp.Expr, types: MappingSchema) -> None:
    """ClickHouse wraps 64-bit integers around where DuckDB is exact or fails: a sum or mean of
    integers is taken over Decimal(38, 0) here (exact, as DuckDB's HUGEINT sum), and `+ - *` of
    64-bit integers is worked out in Int128 and cast back with a check, so an overflow fails as
    it does in DuckDB. Text cast to DOUBLE is refused (NULL in ClickHouse where DuckDB fails).
    The types are sqlglot's over the tables' columns; a sum or mean of what has no known type
    is refused rather than guessed."""
    _annotate(tree, types)
    for cast in tree.find_all(exp.Cast):
        if cast.to.this in (exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT) and (
                cast.this.type is not None and cast.this.type.this in exp.DataType.TEXT_TYPES):
            raise not_routable("text cast to DOUBLE is NULL in ClickHouse where it is no "
                               "number, and an error in DuckDB")
    for aggregate in list(tree.find_all(exp.Sum, exp.Avg)):
        argument = aggregate.this
        for value in list(argument.expressions if isinstance(argument, exp.Distinct)
                          else [argument]):
            kind = value.type.this if value.type is not None else exp.DataType.Type.UNKNOWN
            if kind in exp.DataType.INTEGER_TYPES:
                value.replace(exp.cast(value.copy(), exp.DataType.build(_WIDE_SUM,
                                                                        dialect=DIALECT)))
            elif kind in (exp.DataType.Type.UNKNOWN, exp.DataType.Type.NULL):
                raise not_routable(f"the type of {aggregate.key}()'s argument is not known, "
                                   "and ClickHouse wraps 64-bit integer sums around")
    # Typed again: a sum of integers is a DECIMAL now (DuckDB's HUGEINT), so arithmetic on it
    # is not checked as 64-bit.
    _annotate(tree, types)
    # Deepest first: an outer operation copies its operands once they are rewritten.
    for operation in reversed(list(tree.find_all(exp.Add, exp.Sub, exp.Mul))):
        target = _CHECKED.get(operation.type.this) if operation.type is not None else None
        if target is None:
            continue
        wide = operation.__class__(
            this=exp.Anonymous(this="toInt128", expressions=[operation.this.copy()]),
            expression=exp.Anonymous(this="toInt128",
                                     expressions=[operation.expression.copy()]))
        operation.replace(exp.Anonymous(this="accurateCast", expressions=[
            exp.paren(wide), exp.Literal.string(target)]))


def _annotate(tree: exp.Expr, types: MappingSchema) -> None:
    try:
        annotate_types(tree, schema=types, dialect="duckdb")
    except Exception as exc:  # sqlglot raises several types; any means: not known
        raise not_routable("the types of its expressions could not be worked out") from exc


INT64_MAX = 2**63 - 1
DECIMAL_DIGITS = 38


def _exact_number(literal: exp.Literal) -> None:
    """Number literals typed as DuckDB types them: ClickHouse reads `0.06` and any integer past
    64 bits as a Float64, so `0.06 - 0.01` is not 0.05 there. A decimal literal becomes the
    DECIMAL DuckDB makes of it; an integer too large for 64 bits is refused."""
    if literal.is_string or not literal.is_number:
        return
    text = literal.name.lstrip("+-")
    if "e" in text.lower():
        return  # DOUBLE in both
    if "." not in text:
        if int(text) > INT64_MAX:
            raise not_routable("an integer past 64 bits is a float in ClickHouse")
        return
    whole, _, fraction = text.partition(".")
    digits = len(whole.lstrip("0")) + len(fraction)
    if digits > DECIMAL_DIGITS:
        raise not_routable("a decimal number of more than 38 digits has no exact type")
    literal.replace(exp.cast(exp.Literal.string(literal.name), exp.DataType.build(
        f"DECIMAL({max(digits, len(fraction), 1)}, {len(fraction)})")))


def _unique_aliases(select: exp.Select) -> None:
    """ClickHouse refuses one alias for two expressions (`p.id AS id, o.id AS id`); the answer
    is named by the query's outputs, by position, so a repeated alias can take another name."""
    seen: set[str] = set()
    for index, projection in enumerate(select.expressions):
        name = projection.alias_or_name
        if name in seen and isinstance(projection, exp.Alias):
            projection.set("alias", exp.to_identifier(f"_output_{index}", quoted=True))
        seen.add(name)


def _refuse_what_differs(tree: exp.Expr) -> None:
    for node in tree.walk():
        for kind, reason in _DIFFERENT.items():
            if isinstance(node, kind):
                raise not_routable(reason)
        if isinstance(node, exp.IntDiv):
            raise not_routable("integer division rounds otherwise in ClickHouse")
        if isinstance(node, exp.Func) and type(node) not in _SAME:  # a subclass may differ
            name = node.sql_name() if not isinstance(node, exp.Anonymous) else node.name
            raise not_routable(f"{name.lower()}() is not known to answer the same in "
                               "ClickHouse", function=name.lower())
        why = _differs(node)
        if why is not None:
            raise not_routable(why)
        if isinstance(node, exp.In) and not _filters_only(node) and not _negated_filter(node):
            # x IN (…, NULL) is NULL in SQL, false in ClickHouse: equal only where a NULL
            # and a false both drop the row.
            raise not_routable("IN as a value answers otherwise for NULLs in ClickHouse")


_CASTS_KEPT = {exp.DataType.Type.DATE, exp.DataType.Type.DATE32, exp.DataType.Type.TIMESTAMP,
               exp.DataType.Type.TIMESTAMPNTZ, exp.DataType.Type.TIMESTAMPTZ,
               exp.DataType.Type.DATETIME, exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT}
_EXTRACTS_KEPT = {"YEAR", "MONTH", "DAY"}


def _differs(node: exp.Expr) -> str | None:  # noqa: PLR0911 - one reason per construct
    """Why this node would answer otherwise in ClickHouse (None: it answers the same)."""
    if isinstance(node, exp.Cast):
        return _cast_differs(node)
    if isinstance(node, exp.Extract) and node.this.name.upper() not in _EXTRACTS_KEPT:
        return f"extract({node.this.name.lower()}) answers otherwise in ClickHouse"
    if isinstance(node, exp.Mod):
        return "% keeps a decimal's scale otherwise in ClickHouse"
    if isinstance(node, exp.Like | exp.ILike) and "\\" in node.expression.sql():
        return "a backslash in a LIKE pattern escapes in ClickHouse"
    if isinstance(node, exp.Substring):
        length = node.args.get("length")
        if length is not None and not (isinstance(length, exp.Literal) and length.is_int
                                       and int(length.name) >= 0):
            return "substring() with a length that may be negative answers otherwise"
    if isinstance(node, exp.Count) and _correlated(node):
        return "count() of a correlated subquery with no rows is NULL in ClickHouse, not 0"
    return None


def _cast_differs(node: exp.Cast) -> str | None:
    """Casts to integers and decimals truncate in ClickHouse where DuckDB rounds, text that is
    no number or date is NULL or another day there where DuckDB fails, and numbers are written
    as text otherwise: kept are casts to DOUBLE of what is no text literal, and casts to dates
    and timestamps of a date or timestamp, or of a literal that is one."""
    target, source = node.to.this, node.this
    if target in (exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT):
        if not (isinstance(source, exp.Literal) and source.is_string):
            return None
    elif target in _CASTS_KEPT:
        if isinstance(source, exp.Literal) and source.is_string and _iso_time(source.name):
            return None
        if isinstance(source, exp.Cast) and source.to.this in _CASTS_KEPT - {
                exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT}:
            return None
    return f"a cast to {node.to.sql(dialect='duckdb')} converts otherwise in ClickHouse"


def _iso_time(text: str) -> bool:
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _correlated(node: exp.Expr) -> bool:
    """`node` is inside a subquery that names a table alias defined outside it."""
    query = node.find_ancestor(exp.Select)
    while query is not None and query.parent is not None:
        inner = {t.alias_or_name for t in query.find_all(exp.Table)} | {
            s.alias_or_name for s in query.find_all(exp.Subquery) if s.alias_or_name}
        if any(c.table and c.table not in inner for c in query.find_all(exp.Column)):
            return True
        query = query.parent.find_ancestor(exp.Select)
    return False


def _filters_only(node: exp.Expr) -> bool:
    """True when `node` only decides whether a row is kept: it is a WHERE, HAVING or join
    condition, or part of one through AND and OR only."""
    child = node
    parent = node.parent
    while isinstance(parent, exp.And | exp.Or | exp.Paren):
        child, parent = parent, parent.parent
    return isinstance(parent, exp.Where | exp.Having | exp.Join) and (
        not isinstance(parent, exp.Join) or child is parent.args.get("on"))


def _negated_filter(node: exp.In) -> bool:
    """NOT (x IN …) in a filter, over a subquery or a list of literals: `_not_in` writes it."""
    parent = node.parent
    if not (isinstance(parent, exp.Not) and _filters_only(parent)):
        return False
    query = node.args.get("query")
    if query is not None:
        return _one_column(query) is not None
    return all(isinstance(e, exp.Literal | exp.Null) for e in node.expressions)


def _one_column(query: exp.Expr) -> str | None:
    inner = query.this if isinstance(query, exp.Subquery) else query
    if isinstance(inner, exp.Select) and len(inner.expressions) == 1:
        return inner.expressions[0].alias_or_name or None
    return None


def _not_in(node: exp.In) -> exp.Expr:
    """NOT (x IN s) with SQL's NULLs, in a filter: kept when s is empty, or when x is not NULL,
    matches nothing and s holds no NULL (ClickHouse alone would keep a row of x when s holds
    a NULL, and drop a NULL x when s is empty)."""
    value = node.this
    query = node.args.get("query")
    if query is None:  # literals: a NULL among them keeps nothing
        if any(isinstance(e, exp.Null) for e in node.expressions):
            return exp.false()
        return exp.and_(exp.not_(node.copy()), exp.Is(this=value.copy(), expression=exp.null()
                                                       ).not_())
    inner = query.this if isinstance(query, exp.Subquery) else query
    column = _one_column(query)
    source = inner.copy().subquery("_s")
    empty = exp.Exists(this=exp.select("1").from_(source.copy())).not_()
    holds_null = exp.Exists(this=exp.select("1").from_(source.copy()).where(
        exp.column(str(column), "_s", quoted=True).is_(exp.null())))
    present = exp.and_(exp.not_(node.copy()), exp.Is(this=value.copy(), expression=exp.null()
                                                       ).not_())
    return exp.paren(exp.and_(exp.or_(exp.paren(present), empty), holds_null.not_()))


def check_written(sql: str, database: str, tables: set[str]) -> None:
    """The ClickHouse SQL reads only the mirrors of `tables` in `database`, and its only
    parameters are the lists of their files."""
    try:
        written = sqlglot.parse_one(sql, read=DIALECT)
    except sqlglot.errors.ParseError as exc:
        raise not_routable("its ClickHouse form could not be checked") from exc
    ours = {f"files_{n}" for n in range(len(tables))}
    for placeholder in written.find_all(exp.Placeholder):
        if placeholder.name not in ours:
            raise not_routable("it holds a query parameter")
    ctes = {cte.alias_or_name for cte in written.find_all(exp.CTE)}
    for table in written.find_all(exp.Table):
        if isinstance(table.this, exp.Func):
            raise not_routable("it reads a table function")
        if table.db == database and table.name in tables:
            continue
        if not table.db and table.name in ctes:
            continue
        raise not_routable("it names a table outside the tenant's mirrors",
                           table=table.sql(dialect=DIALECT)[:100])
    if written.args.get("settings") or written.args.get("format") or any(
            isinstance(n, exp.Into) for n in written.walk()):
        raise not_routable("its ClickHouse form carries settings or an output clause")
