"""Generated queries on the platform and on DuckDB: every check, the classes of failure, the
reduction of failing queries, and the report.

Checks, each a pass over the queries:
- `single` and `distributed`: the query with `"plan"` forced, judged against DuckDB;
- `hash`: queries whose distributed plan broadcast, again with a zero broadcast threshold (so
  the two largest relations are hash-partitioned), judged against DuckDB;
- `concurrent`: the queries whose plan split, distributed again, four at a time (the other
  checks run distributed plans one at a time, so that a failure there is the query's own);
- `rules_off`: the query with every optimizer rule switched off (no pushdown, no pruning, no
  column pruning), which must give the platform's own single-node answer (metamorphic);
- `tlp`: ternary logic partitioning (metamorphic): `WHERE p`, `WHERE NOT p` and
  `WHERE p IS NULL` together return what the query without p returns.

Classes: `wrong_answer` (both answered, differently), `server_error` (5xx), `refused` (a 4xx
for a query DuckDB answers), `timeout`, `accepted_invalid` (an answer to what DuckDB refuses),
`metamorphic` (the platform disagrees with itself).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tools.sqlgen.compare import Answer, compare, distinct_rows, multiset_union, same_multiset
from tools.sqlgen.oracle import Oracle
from tools.sqlgen.queries import Query
from tools.sqlgen.reduce import reduce_query
from tools.sqlgen.targets import Target

CHECKS = ("single", "distributed", "hash", "concurrent", "rules_off", "tlp")
SYSTEM_COLUMNS = frozenset({"data_id", "_timestamp", "_seq", "_upsert"})


@dataclass
class Failure:
    query: Query
    check: str
    kind: str
    detail: str
    got: Answer
    want: Answer | None
    signature: str = ""
    reduced: str | None = None
    known_class: int | None = None

    def to_json(self, seed: int) -> dict[str, Any]:
        return {"seed": seed, "query_id": self.query.id, "check": self.check, "kind": self.kind,
                "known_issue_20_class": self.known_class, "detail": self.detail[:1500],
                "reduced": self.reduced, "query": self.query.sql, "uses": sorted(self.query.uses),
                "platform": self.got.brief(), "duckdb": self.want.brief() if self.want else None}


# What the platform refuses on purpose though DuckDB answers it, as the README lists it ("SQL
# the platform refuses on purpose"): a 4xx whose message holds one of these is no failure; each
# is counted (Tally.documented) and reported.
DOCUMENTED_REFUSALS = (
    "USING or NATURAL in a FROM clause that also has an outer join in parentheses",
    "USING after a comma in FROM, on a column a table before the comma also has",
    "whole numbers in a query are at most 2^127 - 1",
    "levels are read",  # brackets nested past lakehouse/sql/parse.py's MAX_NESTING
    "is nested too deeply to be read",
)


def documented(answer: Answer) -> bool:
    return 400 <= answer.status < 500 and any(text in answer.error
                                              for text in DOCUMENTED_REFUSALS)


@dataclass
class Tally:
    runs: int = 0
    seconds: float = 0.0
    strategies: dict[str, int] = field(default_factory=dict)
    documented: int = 0  # refusals of DOCUMENTED_REFUSALS

    def add(self, answer: Answer) -> None:
        self.runs += 1
        self.documented += documented(answer)
        self.seconds += answer.elapsed_s
        key = answer.strategy or (f"error {answer.status}" if not answer.ok else "?")
        self.strategies[key] = self.strategies.get(key, 0) + 1


def normalized(text: str) -> str:
    """An error or difference without its particulars: what groups failures of one cause."""
    text = re.sub(r"cannot (combine|compare) .*? \(([A-Z][A-Z_ ]*(?:\(\d+, \d+\))?)\) with .*"
                  r"\(([A-Z][A-Z_ ]*(?:\(\d+, \d+\))?)\)$", r"cannot \1 … (\2) with … (\3)", text)
    text = re.sub(r"'[^']*'", "'…'", text)
    text = re.sub(r'"[^"]*"', '"…"', text)
    text = re.sub(r"\b[a-z]+\d+\b", "x", text)
    text = re.sub(r"-?\b\d+(\.\d+)?\b", "N", text)
    return text[:120]


def judge(query: Query, got: Answer, want: Answer,  # noqa: PLR0911 - one return per class
          check: str) -> Failure | None:
    """The failure, if any, of the platform's answer `got` against DuckDB's `want`."""
    if not want.ok:
        if got.ok:
            return Failure(query, check, "accepted_invalid", f"DuckDB refuses: {want.error}",
                           got, want, "accepted_invalid")
        if got.status >= 500:
            return Failure(query, check, "server_error", got.error, got, want,
                           f"server_error {got.status}: {normalized(got.error)}")
        return None
    if got.ok:
        difference = compare(got, want, ordered=query.limited, order_keys=[
            (k.position, k.descending, k.nulls_first) for k in query.order_keys])
        if difference is None:
            return None
        return Failure(query, check, "wrong_answer", f"{difference.what}: {difference.detail}",
                       got, want, f"wrong_answer: {difference.what}")
    if got.status == 408 or "timeout" in got.error or "timed_out" in got.error:
        return Failure(query, check, "timeout", got.error, got, want, "timeout")
    if got.status >= 500:
        return Failure(query, check, "server_error", got.error, got, want,
                       f"server_error {got.status}: {normalized(got.error)}")
    if documented(got):
        return None
    return Failure(query, check, "refused", got.error, got, want,
                   f"refused {got.status}: {normalized(got.error)}")


def known_class(failure: Failure) -> int | None:
    """Which of issue 20's classes (fixed; a failure of one is a regression) a failure is, if
    any: 1, a 5xx from sqlglot's "… is not Alias" (a subquery in the select list without a
    name, ORDER BY a position); 2, output columns of one name collapsed; 3, `*` showing the
    platform's own columns; 4, a parenthesised join refused."""
    uses, got, want = failure.query.uses, failure.got, failure.want
    if failure.kind == "server_error" and "Alias" in got.error:
        return 1
    if "parenthesised_joins" in uses and failure.kind == "refused":
        return 4
    if want is not None and want.ok and got.ok and "star_over_base_tables" in uses:
        extra = [c for c in got.columns if c not in want.columns]
        if extra and set(extra) <= SYSTEM_COLUMNS:
            return 3
    if (want is not None and want.ok and len(set(want.columns)) < len(want.columns)
            and failure.kind == "wrong_answer"):
        return 2
    return None


class Runner:
    """Puts queries to the target and the oracle. `workers` queries run on the target at once
    (DuckDB and file reads leave the GIL; two keep two cores busy); the oracle answers one at
    a time, first."""

    def __init__(self, target: Target, oracle: Oracle, *,
                 log: Callable[[str], None] | None = None, workers: int = 2) -> None:
        self.target = target
        self.oracle = oracle
        self.log = log or (lambda _: None)
        self.workers = workers
        self._lock = threading.Lock()
        self.tallies: dict[str, Tally] = {c: Tally() for c in CHECKS}
        self.reference: dict[str, Answer] = {}
        self.single: dict[str, Answer] = {}
        self.distributed: dict[str, Answer] = {}

    def _run(self, check: str, sql: str, plan: str) -> Answer:
        answer = self.target.run(sql, plan)
        with self._lock:
            self.tallies[check].add(answer)
        return answer

    def _run_all(self, check: str, sqls: Sequence[str], plan: str,
                 workers: int | None = None) -> list[Answer]:
        """Every query's answer, in order, `workers` at a time (single-node plans only, unless
        told: concurrent distributed plans are a check of their own)."""
        workers = workers or (self.workers if plan == "single" else 1)
        if workers <= 1:
            return [self._run(check, sql, plan) for sql in sqls]
        pool = ThreadPoolExecutor(workers, thread_name_prefix="differential")
        try:
            return list(pool.map(lambda sql: self._run(check, sql, plan), sqls))
        finally:
            # Stopped early (a test's time limit, Ctrl-C): `map` has dropped the queries not yet
            # started; the running ones are not waited for either (each ends at its own time
            # limit), so the failure is reported at once.
            pool.shutdown(wait=False, cancel_futures=True)

    def want(self, query: Query) -> Answer:
        found = self.reference.get(query.id)
        if found is None:
            found = self.reference[query.id] = self.oracle.run(query.sql)
        return found

    # Checks ----------------------------------------------------------------------------------

    def check_plan(self, queries: Sequence[Query], plan: str) -> list[Failure]:
        failures = []
        kept = self.single if plan == "single" else self.distributed
        for start in range(0, len(queries), 500):
            chunk = queries[start:start + 500]
            wants = [self.want(q) for q in chunk]
            for query, want, got in zip(chunk, wants, self._run_all(
                    plan, [q.sql for q in chunk], plan), strict=True):
                kept[query.id] = got
                failure = judge(query, got, want, plan)
                if failure is not None:
                    failures.append(failure)
                    # As it is found: a long run stopped early still says what failed.
                    self.log(f"{plan}: query {query.id} failed, {failure.kind}: "
                             f"{failure.detail[:300]}")
            self.log(f"{plan}: {start + len(chunk)} queries, {len(failures)} failures")
        return failures

    def check_hash(self, queries: Sequence[Query]) -> list[Failure]:
        missing = [q for q in queries if q.id not in self.distributed]
        if missing:  # the distributed plans, if that check has not run
            self.check_plan(missing, "distributed")
        broadcast = [q for q in queries if self.distributed[q.id].strategy == "broadcast"]
        wants = [self.want(q) for q in broadcast]
        with self.target.variant(hash_joins=True):
            answers = self._run_all("hash", [q.sql for q in broadcast], "distributed")
        found = (judge(q, got, want, "hash") for q, got, want in zip(broadcast, answers, wants,
                                                                     strict=True))
        return [f for f in found if f is not None]

    def check_concurrent(self, queries: Sequence[Query], workers: int = 4) -> list[Failure]:
        missing = [q for q in queries if q.id not in self.distributed]
        if missing:  # the distributed plans, if that check has not run
            self.check_plan(missing, "distributed")
        split = [q for q in queries if (self.distributed.get(q.id) or Answer()).strategy
                 in ("partial_aggregate", "broadcast")]
        wants = [self.want(q) for q in split]
        answers = self._run_all("concurrent", [q.sql for q in split], "distributed", workers)
        found = (judge(q, got, want, "concurrent") for q, got, want in zip(split, answers, wants,
                                                                           strict=True))
        return [f for f in found if f is not None]

    def check_rules_off(self, queries: Sequence[Query]) -> list[Failure]:
        failures = []
        chosen = [q for q in queries if (self.single.get(q.id) or Answer(status=0)).ok]
        with self.target.variant(rules=()):
            answers = self._run_all("rules_off", [q.sql for q in chosen], "single")
        for query, got in zip(chosen, answers, strict=True):
            base = self.single[query.id]
            if not got.ok:
                failures.append(Failure(query, "rules_off", "metamorphic",
                                        f"with rules: answered; without: {got.error}",
                                        got, base, "metamorphic: rules_off refused"))
                continue
            difference = compare(got, base, ordered=query.limited)
            if difference is not None:
                failures.append(Failure(
                    query, "rules_off", "metamorphic",
                    f"without rules vs with: {difference.what}: {difference.detail}", got,
                    base, f"metamorphic: rules_off {difference.what}"))
        return failures

    def check_tlp(self, queries: Sequence[Query]) -> list[Failure]:
        failures = []
        chosen = [q for q in queries if q.tlp is not None]
        sqls = [sql for q in chosen if q.tlp for sql in (q.tlp.whole, *q.tlp.parts)]
        answers = self._run_all("tlp", sqls, "single")
        for n, query in enumerate(chosen):
            assert query.tlp is not None  # noqa: S101 - chosen so
            whole, *parts = answers[4 * n:4 * n + 4]
            broken = [a for a in (whole, *parts) if not a.ok]
            if broken:
                want = self.oracle.run(query.tlp.whole)
                if want.ok and broken[0].status >= 500:
                    failures.append(Failure(query, "tlp", "server_error", broken[0].error,
                                            broken[0], want, "server_error (tlp)"))
                continue
            union = multiset_union([p.rows for p in parts])
            rows = whole.rows
            if query.tlp.distinct:
                union, rows = distinct_rows(union), distinct_rows(rows)
            if not same_multiset(rows, union):
                together = Answer(whole.columns, whole.types, union)
                failures.append(Failure(
                    query, "tlp", "metamorphic",
                    f"WHERE p / NOT p / p IS NULL give {len(union)} rows together; without p "
                    f"{len(rows)}", together, whole, "metamorphic: tlp"))
        return failures

    # Reduction -------------------------------------------------------------------------------

    def still_fails(self, failure: Failure) -> Callable[[str], bool]:
        plan = "single" if failure.check in ("single", "rules_off", "tlp") else "distributed"
        if failure.check == "concurrent":
            return lambda _: False  # a race: the query alone does not fail

        def check(sql: str) -> bool:
            want = self.oracle.run(sql)
            if failure.kind != "accepted_invalid" and not want.ok:
                return False
            limited = bool(re.search(r"\bLIMIT\s+\d+(\s+OFFSET\s+\d+)?\s*$", sql))
            candidate = Query(failure.query.id, sql, limited=limited, uses=failure.query.uses)
            got = self.target.run(sql, plan)
            again = judge(candidate, got, want, failure.check)
            if again is not None:
                classify(again)
            return again is not None and again.signature == failure.signature

        return check

    def reduce(self, failures: Iterable[Failure], *, per_signature: int = 3,
               max_checks: int = 150, max_seconds: float = 60.0) -> None:
        done: dict[str, int] = {}
        for failure in failures:
            if failure.kind == "metamorphic" or done.get(failure.signature, 0) >= per_signature:
                continue
            done[failure.signature] = done.get(failure.signature, 0) + 1
            context = (self.target.variant(hash_joins=True) if failure.check == "hash"
                       else _nothing())
            with context:
                failure.reduced, _ = reduce_query(failure.query.sql, self.still_fails(failure),
                                                  max_checks=max_checks,
                                                  max_seconds=max_seconds)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def run_all(runner: Runner, queries: Sequence[Query], *, checks: Sequence[str] = CHECKS,
            rules_off_every: int = 10) -> dict[str, list[Failure]]:
    started = time.perf_counter()
    found: dict[str, list[Failure]] = {}
    for check in checks:
        if check in ("single", "distributed"):
            found[check] = runner.check_plan(queries, check)
        elif check == "hash":
            found[check] = runner.check_hash(queries)
        elif check == "concurrent":
            found[check] = runner.check_concurrent(queries)
        elif check == "rules_off":
            found[check] = runner.check_rules_off(queries[::rules_off_every])
        elif check == "tlp":
            found[check] = runner.check_tlp(queries)
        runner.log(f"{check}: {len(found[check])} failures after "
                   f"{time.perf_counter() - started:.0f} s")
    for failures in found.values():
        for failure in failures:
            classify(failure)
    return found


def classify(failure: Failure) -> None:
    """Put a failure of a known class in that class's group."""
    failure.known_class = known_class(failure)
    if failure.known_class is not None:
        failure.signature = f"issue 20 class {failure.known_class} ({failure.kind})"
