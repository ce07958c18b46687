"""Each version pyproject.toml pins is the one constraints.txt pins (else make cannot install)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _name(raw: str) -> str:
    return raw.lower().replace("_", "-")


def test_pins_agree() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    pinned = dict(_name_version(line) for line in (ROOT / "constraints.txt").read_text()
                  .splitlines() if "==" in line)
    for requirement in wanted:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?(?:==(.+))?", requirement)
        assert match, requirement
        name = _name(match.group(1))
        assert name in pinned, f"{name} is not pinned in constraints.txt"
        if match.group(3):
            assert pinned[name] == match.group(3), (requirement, pinned[name])


def _name_version(line: str) -> tuple[str, str]:
    name, version = line.strip().split("==")
    return _name(name), version
