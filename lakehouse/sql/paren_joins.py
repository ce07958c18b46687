"""Parenthesised joins after a FROM clause's first source, `a JOIN (b JOIN c ON p) ON q`, where
sqlglot's name resolution cannot follow them: it expands USING (and NATURAL) over a flat chain
of joins and fails with "Unknown table" on a nested one (pure passes over a tree, before
qualification).

- Inner joins all the way are associative: `a JOIN (b JOIN c ON p) ON q` is
  `a CROSS JOIN b JOIN c ON p AND q`, which every later step reads as an ordinary chain.
- What remains, an outer join around or inside the parentheses in a FROM clause that also joins
  with USING or NATURAL, is refused with a message that says what to write instead (README,
  "SQL the platform refuses on purpose").
"""

from __future__ import annotations

from sqlglot import exp

from lakehouse.sql.problems import Problem, problem_at

UNSUPPORTED_USING = (
    "USING or NATURAL in a FROM clause that also has an outer join in parentheses after its "
    "first table is not supported: write that join's condition with ON")


def _nested(join: exp.Join) -> exp.Expr | None:
    """The first source of a parenthesised join in join position (its `joins` hold the rest)."""
    wrapper = join.this
    if not isinstance(wrapper, exp.Subquery) or wrapper.alias:
        return None
    inner = wrapper.this
    if isinstance(inner, exp.Table | exp.Subquery) and inner.args.get("joins"):
        return inner
    return None


def _inner(join: exp.Join) -> bool:
    return (not join.side and (join.kind or "").upper() in ("", "INNER", "CROSS")
            and join.method != "NATURAL" and not join.args.get("using")
            and not isinstance(join.this, exp.Lateral))


def flatten_inner_joins(tree: exp.Expr) -> None:
    """Turn each parenthesised join of inner joins, joined by an inner join, into the chain."""
    for select in list(tree.find_all(exp.Select)):
        joins = select.args.get("joins") or []
        if not any(_nested(j) is not None for j in joins):
            continue
        flat: list[exp.Join] = []
        for join in joins:
            first = _nested(join)
            inner_joins = list(first.args.get("joins") or []) if first is not None else []
            if first is None or not _inner(join) or not all(_inner(j) for j in inner_joins):
                flat.append(join)
                continue
            first.set("joins", None)
            # After a comma the chain stays after a comma: `a, (b JOIN c ON p) JOIN d USING (k)`
            # joins d to b and c only, as `a, b JOIN c ON p JOIN d USING (k)` does, where a
            # CROSS JOIN would show d a's columns too.
            comma = not (join.args.get("on") or join.kind or join.side or join.method)
            flat.append(exp.Join(this=first) if comma else exp.Join(this=first, kind="CROSS"))
            condition = join.args.get("on")
            for index, inner in enumerate(inner_joins):
                if index == len(inner_joins) - 1 and condition is not None:
                    own = inner.args.get("on")
                    inner.set("on", exp.and_(own, condition) if own is not None else condition)
                    inner.set("kind", None)
                flat.append(inner)
        select.set("joins", flat)


def using_beside_nested_joins(tree: exp.Expr) -> list[Problem]:
    """The FROM clauses sqlglot cannot resolve: a parenthesised join after the first source,
    and USING or NATURAL anywhere in the clause."""
    problems = []
    for select in tree.find_all(exp.Select):
        joins = select.args.get("joins") or []
        nested = [j for j in joins if _nested(j) is not None]
        if not nested:
            continue
        every = [j for join in joins for j in join.find_all(exp.Join)
                 if j.find_ancestor(exp.Select) is select]
        using = [j for j in every if j.args.get("using") or j.method == "NATURAL"]
        if using:
            problems.append(problem_at(using[0], "unsupported_query", UNSUPPORTED_USING))
    return problems
