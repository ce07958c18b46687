"""Shrinking a failing query while it still fails the same way (pure: the caller says what
"still fails" means).

Greedy, in the manner of C-Reduce and SQLancer's reducer, over sqlglot's tree: try each way of
making the query smaller — drop a clause (WHERE, HAVING, GROUP BY, ORDER BY with its LIMIT,
DISTINCT, a CTE), a select item, a join, one side of AND / OR / a set operation, a NOT, a CASE
or a function around its first argument — keep the first that still fails, and start again,
until nothing smaller fails or the budget of checks is spent. Candidates that are not valid
SQL any more are simply ones that do not fail the same way (the check runs DuckDB first).
A select item is never dropped from a SELECT with a LIMIT: its ORDER BY covers every column,
and the rows a LIMIT keeps would then depend on ties.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import sqlglot
from sqlglot import exp

DIALECT = "duckdb"
Mutation = Callable[[exp.Expr], exp.Expr | None]


def _drop_arg(name: str, *also: str) -> Mutation:
    def apply(node: exp.Expr) -> exp.Expr | None:
        if not node.args.get(name):
            return None
        for arg in (name, *also):
            node.set(arg, None)
        return node
    return apply


def _drop_item(i: int) -> Mutation:
    def apply(node: exp.Expr) -> exp.Expr | None:
        items = node.expressions
        if len(items) < 2 or i >= len(items) or node.args.get("limit") is not None:
            return None
        if isinstance(items[i], exp.Star):
            return None
        node.set("expressions", items[:i] + items[i + 1:])
        return node
    return apply


def _drop_join(i: int) -> Mutation:
    def apply(node: exp.Expr) -> exp.Expr | None:
        joins = list(node.args.get("joins") or [])
        if i >= len(joins):
            return None
        node.set("joins", joins[:i] + joins[i + 1:] or None)
        return node
    return apply


def _drop_cte(i: int) -> Mutation:
    def apply(node: exp.Expr) -> exp.Expr | None:
        with_ = node.args.get("with_")
        if not isinstance(with_, exp.With) or i >= len(with_.expressions):
            return None
        kept = with_.expressions[:i] + with_.expressions[i + 1:]
        node.set("with_", exp.With(expressions=kept) if kept else None)
        return node
    return apply


def _replace_with(part: str) -> Mutation:
    def apply(node: exp.Expr) -> exp.Expr | None:
        inner = node.args.get(part)
        if not isinstance(inner, exp.Expr):
            return None
        replacement = inner.copy()
        if node.parent is None:
            return replacement
        node.replace(replacement)
        return node
    return apply


def _case_branch(node: exp.Expr) -> exp.Expr | None:
    ifs = node.args.get("ifs") or []
    if not ifs:
        return None
    replacement = ifs[0].args["true"].copy()
    if node.parent is None:
        return None
    node.replace(replacement)
    return node


def mutations(node: exp.Expr) -> list[Mutation]:  # noqa: PLR0911 - one return per node type
    if isinstance(node, exp.Select):
        found: list[Mutation] = [_drop_cte(i) for i in range(
            len(node.args["with_"].expressions) if node.args.get("with_") else 0)]
        found += [_drop_arg("where"), _drop_arg("having"), _drop_arg("group", "having"),
                  _drop_arg("order", "limit", "offset"), _drop_arg("distinct"),
                  _drop_arg("offset")]
        found += [_drop_join(i) for i in range(len(node.args.get("joins") or []))]
        found += [_drop_item(i) for i in range(len(node.expressions))]
        return found
    if isinstance(node, exp.SetOperation):
        return [_replace_with("this"), _replace_with("expression"),
                _drop_arg("order", "limit", "offset")]
    if isinstance(node, exp.And | exp.Or):
        return [_replace_with("this"), _replace_with("expression")]
    if isinstance(node, exp.Not | exp.Paren):
        return [_replace_with("this")]
    if isinstance(node, exp.Case):
        return [_case_branch]
    if isinstance(node, exp.Func) and not isinstance(node, exp.AggFunc) and isinstance(
            node.args.get("this"), exp.Expr):
        return [_replace_with("this")]
    return []


def _candidates(tree: exp.Expr) -> Iterator[exp.Expr]:
    count = len(list(tree.walk()))
    for index in range(count):
        template = list(tree.walk())[index]
        for mutation_index in range(len(mutations(template))):
            copy = tree.copy()
            node = list(copy.walk())[index]
            mutation = mutations(node)[mutation_index]
            changed = mutation(node)
            if changed is None:
                continue
            yield changed if node is copy and changed is not node else copy


def reduce_query(sql: str, still_fails: Callable[[str], bool], *, max_checks: int = 200,
                 max_seconds: float = 60.0) -> tuple[str, int]:
    """The smallest form of `sql` found that `still_fails`, and the checks it took."""
    try:
        tree = sqlglot.parse_one(sql, read=DIALECT)
    except sqlglot.errors.ParseError:
        return sql, 0
    best = sql
    checks = 0
    deadline = time.monotonic() + max_seconds
    seen = {sql}
    progress = True
    while progress and checks < max_checks and time.monotonic() < deadline:
        progress = False
        for candidate in _candidates(tree):
            text = candidate.sql(dialect=DIALECT)
            if text in seen or len(text) >= len(best):
                continue
            seen.add(text)
            checks += 1
            if still_fails(text):
                tree, best, progress = candidate, text, True
                break
            if checks >= max_checks or time.monotonic() >= deadline:
                break
    return best, checks
