"""A JSON source nested past what the loader reads is refused, naming the file, before pyarrow's
JSON parser sees it: that parser crashes the whole process (SIGSEGV) on objects nested tens of
thousands deep, and a load part may run in the services' own process. Each read runs in a
process of its own, so the test survives the crash it guards against."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
READ = textwrap.dedent("""
    import sys
    from lakehouse.errors import InvalidInput
    from lakehouse.load.reading import inspect, read_chunks
    from lakehouse.load.sources import SourceFile
    path = sys.argv[1]
    file = SourceFile("file:///", path, "ndjson", 0, "imports/deep.ndjson")
    try:
        inspect(file)
        rows = sum(t.num_rows for t in read_chunks(file, None, {}, 1000))
        print("read", rows)
    except InvalidInput as exc:
        print("refused", exc.code, exc.details.get("file"))
""")


def _read(path: Path) -> str:
    done = subprocess.run([sys.executable, "-c", READ, str(path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, f"the reading process died: {done.returncode} {done.stderr[-500:]}"
    return done.stdout.strip()


@pytest.mark.parametrize("depth", [65, 50_000])
def test_a_deep_json_source_is_refused_naming_it(tmp_path: Path, depth: int) -> None:
    deep = tmp_path / "deep.ndjson"
    deep.write_text('{"a": 1}\n' + '{"x": ' * depth + "1" + "}" * depth + "\n")
    assert _read(deep) == "refused nesting_too_deep imports/deep.ndjson"


def test_nesting_in_strings_and_within_the_limit_is_read(tmp_path: Path) -> None:
    fine = tmp_path / "fine.ndjson"
    line = '{"a": "[[[[{{{{", "b": ' + '{"c": ' * 30 + "1" + "}" * 30 + "}\n"
    fine.write_text(line * 3)
    assert _read(fine) == "read 3"
