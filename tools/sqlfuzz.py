"""Run N generated SQL queries from any seed against the platform and DuckDB; write a report.

    .venv/bin/python -m tools.sqlfuzz --seed 7 -n 2000                    # in this process
    .venv/bin/python -m tools.sqlfuzz --seed 7 -n 20000 --url http://127.0.0.1 \\
        --data-dir data --username admin --password password            # a running system

In this process (the default) the platform is the real core under a temporary DATA_DIR, its
Operation Node reached through FastAPI's TestClient, distributed plans on an in-process Dask
cluster: no server needed, and fastest. With --url the tables go into a running system over
HTTP (files written under --data-dir, which must be its DATA_DIR or under its LOAD_ROOTS, and
loaded with POST /data/load; records through POST /data/store; POST /data/flush), named
`<prefix><n>` so runs never meet; the `hash` and `rules_off` checks change the optimizer's
configuration (PUT /optimize/config, an admin's) while they run and put it back.

The report (<out>/sqlfuzz-<seed>.md and .json) has every check's figures and each failure with
its seed and query id (`generate(dataset, seed, index)` makes it again), the query reduced to a
small form that still fails the same way, and both answers, grouped by class: wrong answer,
5xx, refused though DuckDB answers, timeout, answered though DuckDB refuses, and the
platform disagreeing with itself (rules off, ternary logic partitioning). Exit status 1 when
anything failed.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: the checkout's packages, as with -m
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.sqlgen.oracle import Oracle
from tools.sqlgen.queries import generate
from tools.sqlgen.report import summary, to_json, to_markdown
from tools.sqlgen.runner import CHECKS, Runner, run_all
from tools.sqlgen.schema import DataOptions, make_dataset
from tools.sqlgen.scope import ALL, Features
from tools.sqlgen.targets import InProcess, Remote, Target


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sqlfuzz", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-n", "--queries", type=int, default=2000)
    parser.add_argument("--tables", type=int, default=5)
    parser.add_argument("--url", help="a running system, e.g. http://127.0.0.1 (ports: the "
                                      "README's)")
    parser.add_argument("--ports", default="",
                        help="services on other ports than the README's, e.g. "
                             "auth=18090,tenant=18000,operation=18081,cbo=18082,catalog=18083")
    parser.add_argument("--data-dir", type=Path, default=Path("data"),
                        help="the running system's DATA_DIR (files to load go under it)")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default="password")
    parser.add_argument("--prefix", help="table names' prefix (default: fz<seed>_<random>_t)")
    parser.add_argument("--checks", default=",".join(CHECKS),
                        help=f"comma-separated, of {', '.join(CHECKS)}")
    parser.add_argument("--without", default="",
                        help="comma-separated constructs not to generate, of "
                             f"{', '.join(ALL.__dataclass_fields__)}")
    parser.add_argument("--reduce", type=int, default=3,
                        help="failures reduced per group (0: none)")
    parser.add_argument("--timeout", type=float, default=60.0, help="per query, seconds")
    parser.add_argument("--out", type=Path, default=Path("."))
    return parser.parse_args(argv)


def target_for(args: argparse.Namespace, dataset: Any, workdir: Path) -> Target:
    if args.url is None:
        return InProcess(dataset, workdir)
    host = args.url.split("://", 1)[-1].rstrip("/").split(":")[0]
    ports = {name: int(port) for name, _, port in (
        item.partition("=") for item in args.ports.split(",") if item)}
    remote = Remote(dataset, host=host, data_dir=args.data_dir, username=args.username,
                    password=args.password, ports=ports, timeout_s=args.timeout)
    remote.setup()
    return remote


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    features: Features = ALL.without(*(name for name in args.without.split(",") if name))
    prefix = args.prefix or f"fz{args.seed}_{secrets.token_hex(2)}_t"
    dataset = make_dataset(args.seed, DataOptions(tables=args.tables), prefix=prefix)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f} s] {message}", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="sqlfuzz-") as workdir:
        target = target_for(args, dataset, Path(workdir))
        oracle = Oracle(dataset)
        try:
            log(f"tables ready: {', '.join(t.name for t in dataset.tables)}")
            queries = [generate(dataset, args.seed, i, features) for i in range(args.queries)]
            runner = Runner(target, oracle, log=log)
            found = run_all(runner, queries, checks=args.checks.split(","))
            failures = [f for fs in found.values() for f in fs]
            if args.reduce and failures:
                log(f"reducing up to {args.reduce} failures of each group")
                runner.reduce(failures, per_signature=args.reduce, max_checks=120,
                              max_seconds=30)
        finally:
            target.close()
            oracle.close()
    meta = {"target": args.url or "in-process", "queries": args.queries, "left_out":
            args.without or "none", "tables": prefix + "*", "seconds": round(time.perf_counter()
                                                                    - started, 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    markdown = args.out / f"sqlfuzz-{args.seed}.md"
    markdown.write_text(to_markdown(args.seed, found, runner.tallies, args.queries, meta))
    (args.out / f"sqlfuzz-{args.seed}.json").write_text(
        to_json(args.seed, found, runner.tallies, args.queries, meta))
    figures = summary(found, runner.tallies, args.queries)
    log(f"report: {markdown}; failures by class: {figures['failures_by_kind']}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
