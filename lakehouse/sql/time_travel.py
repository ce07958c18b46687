"""`AT (VERSION => N)` after a table name: the query reads snapshot N (pure, over one tree).

A query reads one snapshot, so the clause pins the whole query, not the one table it follows:
every clause in it must name the same N, and tables without one read N too. The clauses are
taken out of the tree (DuckDB would read them as its own time travel, which our relations do
not have); every other historical form (AT (TIMESTAMP => …), BEFORE, FOR SYSTEM_TIME AS OF) is
refused with what to write instead, rather than by the guard's generic "not allowed".
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from lakehouse.sql.literals import out_of_range, whole_number
from lakehouse.sql.problems import Problem, problem_at, refusal

_HOW = ("time travel is written AT (VERSION => <snapshot number>) after a table name, or as "
        "\"snapshot\": <number> in the request")


@dataclass(frozen=True, slots=True)
class Pinned:
    tree: exp.Expr  # without the AT (VERSION => N) clauses
    snapshot: int | None  # N, or None when the query names no snapshot


def _historical(table: exp.Table) -> exp.Expr | None:
    return table.args.get("when") or table.args.get("version")


def _version(clause: exp.Expr) -> int | None:
    """N of an `AT (VERSION => N)` clause with a positive whole number; None for any other."""
    if not isinstance(clause, exp.HistoricalData):
        return None
    if str(clause.this).upper() != "AT" or str(clause.args.get("kind", "")).upper() != "VERSION":
        return None
    number = whole_number(clause.expression)
    return number if number is not None and number >= 1 else None


def pinned_snapshot(tree: exp.Expr) -> Pinned:
    """The snapshot the query's AT (VERSION => N) clauses name, and the tree without them;
    refused (400) for other historical forms or clauses naming different snapshots."""
    problems: list[Problem] = []
    found: dict[int, exp.Table] = {}
    tables = [t for t in tree.find_all(exp.Table) if _historical(t) is not None]
    for table in tables:
        clause = _historical(table)
        number = _version(clause) if clause is not None else None
        if number is None and clause is not None and (too_large := out_of_range(clause)):
            problems.extend(too_large)
        elif number is None:
            problems.append(problem_at(clause, "unsupported_time_travel",
                                       f"{(clause.sql() if clause else '')[:60]}: {_HOW}"))
        else:
            found.setdefault(number, table)
    if len(found) > 1:
        problems.append(problem_at(list(found.values())[1], "conflicting_snapshots",
                                   f"the query names snapshots {sorted(found)}; a query reads "
                                   "one snapshot"))
    if problems:
        raise refusal(problems)
    if not tables:
        return Pinned(tree, None)
    stripped = tree.copy()
    for table in stripped.find_all(exp.Table):
        table.set("when", None)
    return Pinned(stripped, next(iter(found)))
