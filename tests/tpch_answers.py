"""TPC-H queries and their answers compared as the HTTP API gives them."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import orjson
from prefect.settings import PREFECT_API_URL

from api.core import Core, build_core
from api.query_results import json_bytes, rows_json
from flows.load import start_load
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from lakehouse.load.loader import Loader, LoadRequest
from lakehouse.load.sources import roots_for

QUERIES = Path(__file__).resolve().parent / "golden" / "tpch"
TABLES = ("customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier")
UNORDERED = {6, 14, 17, 19}  # one-row answers
REL_TOL = 1e-9


def query(n: int) -> str:
    return (QUERIES / f"q{n:02d}.sql").read_text()


PASSWORD = "analyst-password-1"


def loaded(root: Path, scale: str, role: Role, **settings: Any) -> tuple[Core, dict[str, str]]:
    """A core (write path open, Prefect the harness's) whose tenant `acme` has the 8 tables at
    `scale`, loaded by `load` flow runs; an analyst's headers."""
    generated = generate(scale, root / "generated")
    found = Settings.for_tests(root / "data", prefect_api_url=PREFECT_API_URL.value(),
                               load_roots=str(generated), load_on_dask=False, **settings)
    core = build_core(found, ingest=True)
    assert core.catalog and core.storage and core.declarations
    loader = Loader(core.catalog, core.storage, roots_for(found), core.declarations)
    for table in TABLES:
        watch = start_load(LoadRequest("acme", table, str(generated / f"{table}.parquet")),
                           loader)
        assert not watch.run_id.startswith("local-")
        watch.wait(timeout_s=300)
    core.auth.create_user("analyst", PASSWORD, "acme", role)
    token = core.auth.login("analyst", PASSWORD).access_token
    return core, {"Authorization": f"Bearer {token}"}


def oracle(core: Core) -> duckdb.DuckDBPyConnection:
    """DuckDB over each table's data files."""
    assert core.catalog and core.storage
    found = duckdb.connect()
    for table in TABLES:
        paths = [core.storage.full(f.path) for f in core.catalog.files("acme", table)]
        found.read_parquet(paths).create_view(table)
    return found


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
