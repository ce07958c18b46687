"""Result columns named as DuckDB names them, from the query as the user wrote it.

DuckDB names an output without an alias by the text of its expression as written (`count(*)`
is `count_star()`, `a + 1` is `(a + 1)`, a scalar subquery its whole text). Qualification and
tenant binding rewrite that text (qualified names, the tenant's internal schema), so the
platform would name such a column `_col_N`, or by text that holds the internal schema. Each
unnamed output gets its DuckDB name as an explicit alias *before* anything is rewritten: what
the executor runs, split or not, then names its outputs as plain DuckDB would on the user's
text, and an outer query may refer to an inner unnamed column by that name, as in DuckDB.

The names come from the caller (the executor asks DuckDB's own parser; pure code here cannot):
`written`, the names of the result's columns as DuckDB names them in the query text the user
sent, and a `Namer` for the rest, given sqlglot's DuckDB text of each (which may differ from
what was written: `IS NOT NULL` comes back as `NOT … IS NULL`). `as_sqlglot_writes` is the
fallback namer: sqlglot's text itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlglot import exp

# Expressions' text (DuckDB SQL) in, the names DuckDB gives them out, in order.
Namer = Callable[[Sequence[str]], Sequence[str]]


def as_sqlglot_writes(texts: Sequence[str]) -> Sequence[str]:
    return list(texts)


def _named_by_itself(projection: exp.Expr) -> bool:
    """An alias, a column (named by its name) or a star or COLUMNS(…) (expanded into columns
    of their own names). A star elsewhere (`count(*)`) is an argument like any other."""
    if isinstance(projection, exp.Alias | exp.Column | exp.Star):
        return True
    return projection.find(exp.Columns) is not None


_AS_WRITTEN = "as_written"


# Expressions sqlglot writes back as DuckDB reads them (their DuckDB names are the same from
# either text): asking DuckDB for the names as written costs about a millisecond a query, which
# `SELECT count(*) … WHERE x = <a new value each time>` would pay every time.
_ALIKE = (exp.Column, exp.Identifier, exp.Literal, exp.Star, exp.Count, exp.Sum, exp.Min,
          exp.Max, exp.Avg, exp.Add, exp.Sub, exp.Mul, exp.Neg, exp.Paren, exp.Null,
          exp.Boolean)


def _writes_back_alike(projection: exp.Expr) -> bool:
    return all(isinstance(node, _ALIKE) for node in projection.walk())


def _first_select(tree: exp.Expr) -> exp.Expr:
    while isinstance(tree, exp.Subquery | exp.SetOperation):
        tree = tree.this
    return tree


# The names of the result's columns as DuckDB reads the query text the user sent (one per item
# of the first SELECT, None for a star), asked for only when one of them has no alias.
Written = Callable[[], Sequence[str | None] | None]


def name_outputs(tree: exp.Expr, namer: Namer, written: Written | None = None) -> exp.Expr:
    """`tree` with every unnamed output of every SELECT aliased with its DuckDB name (changed in
    place; the same tree). Every alias remembers its spelling: qualification lower-cases
    identifiers (DuckDB's are case-insensitive), yet DuckDB names a column `AS "MyCol"` MyCol;
    `restore_spelling` puts it back."""
    pending: list[tuple[exp.Select, int]] = []
    for select in tree.find_all(exp.Select):
        for index, projection in enumerate(select.expressions):
            if isinstance(projection, exp.Alias):
                _remember(projection)
            elif not _named_by_itself(projection):
                pending.append((select, index))
    if not pending:
        return tree
    # Every text before any alias is added: an outer subquery's name holds its inner
    # outputs as written, without the aliases given here.
    texts = [select.expressions[index].sql(dialect="duckdb") for select, index in pending]
    names = list(namer(texts))
    first = _first_select(tree)
    as_sent = written() if written is not None and any(
        select is first and not _writes_back_alike(select.expressions[index])
        for select, index in pending) else None
    if as_sent is not None and isinstance(first, exp.Select) and len(as_sent) == len(
            first.expressions):
        for n, (select, index) in enumerate(pending):
            name = as_sent[index] if select is first else None
            if name is not None:
                names[n] = name
    by_select: dict[int, dict[int, str]] = {}
    selects: dict[int, exp.Select] = {}
    for (select, index), name in zip(pending, names, strict=True):
        by_select.setdefault(id(select), {})[index] = name
        selects[id(select)] = select
    for key, renamed in by_select.items():
        select = selects[key]
        select.set("expressions", [
            exp.Alias(this=projection, alias=_exact(renamed[i])) if i in renamed
            else projection for i, projection in enumerate(select.expressions)])
    return tree


def _exact(name: str) -> exp.Identifier:
    """A name kept as it is spelt (qualification would lower-case it: `CASE  WHEN …`), so that
    an outer `*` shows an inner unnamed output by DuckDB's name too."""
    identifier = exp.to_identifier(name, quoted=True)
    identifier.meta["case_sensitive"] = True
    return identifier


def _remember(alias: exp.Alias) -> exp.Alias:
    identifier = alias.args.get("alias")
    if isinstance(identifier, exp.Identifier):
        identifier.meta[_AS_WRITTEN] = identifier.this
    return alias


def restore_spelling(tree: exp.Expr) -> None:
    """The result's column names (the outputs of the first SELECT) spelt as written. Only
    those: inner names are matched by the planner, in the case qualification gave them."""
    while isinstance(tree, exp.Subquery | exp.SetOperation):
        tree = tree.this
    if not isinstance(tree, exp.Select):
        return
    for projection in tree.expressions:
        identifier = projection.args.get("alias") if isinstance(projection, exp.Alias) else None
        if isinstance(identifier, exp.Identifier) and _AS_WRITTEN in identifier.meta:
            identifier.set("this", identifier.meta[_AS_WRITTEN])
