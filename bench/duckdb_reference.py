"""DuckDB on its own, as a user would run it instead of the platform: a process of its own, 2
threads, views over the generator's original Parquet files. bench/tpch.py starts it and sends
it one JSON line per request; it answers one JSON line each.

    {"views": {"lineitem": ["/path/lineitem.parquet"], ...}}  → {"ok": true}
    {"sql": "SELECT ...", "runs": 3}  → {"rows": N, "best_s": seconds, "columns": [...]}

Each run is timed here from sending the SQL to holding the whole result as Arrow, the way
a Python program using DuckDB would get it.
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any

import duckdb

THREADS = 2


def main() -> None:
    con = duckdb.connect(config={"threads": THREADS})
    for line in sys.stdin:
        request: dict[str, Any] = json.loads(line)
        try:
            answer = handle(con, request)
        except duckdb.Error as exc:
            answer = {"error": str(exc)[:500]}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def handle(con: duckdb.DuckDBPyConnection, request: dict[str, Any]) -> dict[str, Any]:
    if "views" in request:
        for name, paths in request["views"].items():
            con.read_parquet(paths).create_view(name)
        return {"ok": True}
    sql = request["sql"]
    best, rows, columns = math.inf, 0, []
    for _ in range(max(1, int(request.get("runs", 1)))):
        started = time.perf_counter()
        result = con.sql(sql).to_arrow_table()
        best = min(best, time.perf_counter() - started)
        rows, columns = result.num_rows, result.column_names
    return {"rows": rows, "best_s": best, "columns": columns}


if __name__ == "__main__":
    main()
