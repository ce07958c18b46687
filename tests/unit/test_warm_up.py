"""The modules imported at the services' start (api/warm_up.py) exist under these names, so a
renamed one fails here rather than leaving its first import to happen under load."""

from __future__ import annotations

import importlib.util

import pytest

from api.warm_up import LAZY_IMPORTS, warm_up


@pytest.mark.parametrize("name", LAZY_IMPORTS)
def test_each_module_warmed_up_exists(name: str) -> None:
    assert importlib.util.find_spec(name) is not None


def test_warm_up_imports_them_all() -> None:
    import sys

    warm_up()
    assert all(name in sys.modules for name in LAZY_IMPORTS)
