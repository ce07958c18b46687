"""TPC-H queries and their answers compared as the HTTP API gives them."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from api.query_results import json_bytes, rows_json

QUERIES = Path(__file__).resolve().parent / "golden" / "tpch"
TABLES = ("customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier")
UNORDERED = {6, 14, 17, 19}  # one-row answers
REL_TOL = 1e-9


def query(n: int) -> str:
    return (QUERIES / f"q{n:02d}.sql").read_text()


def generate(scale: str, folder: Path) -> Path:
    """TPC-H at `scale` from tpchgen-cli, one Parquet file a table."""
    tool = shutil.which("tpchgen-cli") or str(Path(sys.executable).parent / "tpchgen-cli")
    subprocess.run([tool, "parquet", "--scale-factor", scale, "--output-dir", str(folder),
                    "--quiet"], check=True)
    return folder


def normal(table: Any) -> list[list[Any]]:
    """Rows as the HTTP answer gives them (decimals as strings, dates ISO)."""
    return orjson.loads(json_bytes({"rows": rows_json(table)}))["rows"]  # type: ignore[no-any-return]


def same_cell(a: Any, b: Any) -> bool:
    try:
        x, y = float(a), float(b)
    except (TypeError, ValueError):
        return bool(a == b)
    return math.isclose(x, y, rel_tol=REL_TOL, abs_tol=1e-12)


def same(got: list[list[Any]], want: list[list[Any]], ordered: bool) -> bool:
    if len(got) != len(want):
        return False
    if not ordered:
        got, want = sorted(got, key=str), sorted(want, key=str)
    return all(len(g) == len(w) and all(same_cell(a, b) for a, b in zip(g, w, strict=True))
               for g, w in zip(got, want, strict=True))
