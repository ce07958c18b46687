"""The plans kept for texts asked again (lakehouse/executor/plan_cache.py): found only under an
equal key, the least recently used let go, a tenant's share bounded, long texts never kept."""

from __future__ import annotations

from typing import Any, cast

import pytest

from lakehouse.executor.plan_cache import MAX_TEXT, NOT_SEEN, PlanCache, PlanKey
from lakehouse.optimizer.cost_model import CostModel
from lakehouse.sql.schema_view import ColumnView, SchemaView, TableView

MODEL = CostModel()


def _view(tenant: str, *columns: str) -> SchemaView:
    return SchemaView(tenant, (TableView("t", tuple(ColumnView(c, "BIGINT") for c in columns)),))


def _key(text: str, tenant: str = "acme", snapshot: int = 1,
         view: SchemaView | None = None, model: CostModel = MODEL) -> PlanKey:
    return PlanKey(tenant, snapshot, text, None, model, view or _view(tenant, "a"))


def _plan(name: str) -> Any:
    return cast(Any, (name, name))


@pytest.mark.parametrize(("asked", "found"), [
    (_key("SELECT 1"), True),
    (_key("SELECT 1", snapshot=2), False),  # another snapshot
    (_key("SELECT 1", tenant="globex", view=_view("acme", "a")), False),  # another tenant
    (_key("SELECT 1", view=_view("acme", "a", "b")), False),  # a column more in the view
    (_key("SELECT 1", model=CostModel(mode="single")), False),  # another cost model
    (_key("SELECT  1"), False),  # another text
    (PlanKey("acme", 1, "SELECT 1", "postgres", MODEL, _view("acme", "a")), False),
])
def test_a_plan_is_found_only_under_an_equal_key(asked: PlanKey, found: bool) -> None:
    cache = PlanCache()
    cache.keep(_key("SELECT 1"), _plan("one"))
    assert (cache.get(asked) is not None) is found
    assert (cache.reused, cache.planned) == ((1, 0) if found else (0, 1))


def test_the_least_recently_used_go_and_a_tenant_keeps_at_most_its_share() -> None:
    cache = PlanCache(plans_kept=3, per_tenant=2)
    for name in ("a", "b", "c"):
        cache.keep(_key(f"SELECT '{name}'", tenant=name, view=_view(name, "a")),
                   _plan(name))
    assert cache.get(_key("SELECT 'a'", tenant="a", view=_view("a", "a"))) is not None
    cache.keep(_key("SELECT 'd'", tenant="d", view=_view("d", "a")), _plan("d"))
    assert len(cache) == 3  # "b", the least recently used, went
    assert cache.get(_key("SELECT 'b'", tenant="b", view=_view("b", "a"))) is None
    for text in ("SELECT 1", "SELECT 2", "SELECT 3"):  # one tenant, three texts
        cache.keep(_key(text, tenant="a", view=_view("a", "a")), _plan(text))
    mine = [t for t in ("SELECT 'a'", "SELECT 1", "SELECT 2", "SELECT 3")
            if cache.get(_key(t, tenant="a", view=_view("a", "a"))) is not None]
    assert mine == ["SELECT 2", "SELECT 3"]  # its two newest; another tenant's plan stays
    assert cache.get(_key("SELECT 'd'", tenant="d", view=_view("d", "a"))) is not None


def test_long_texts_are_not_kept() -> None:
    cache = PlanCache()
    long = "SELECT 1" + " " * MAX_TEXT
    cache.keep(_key(long), _plan("long"))
    cache.keep_named(long, None, 7)
    assert len(cache) == 0 and cache.named(long, None) is NOT_SEEN
    cache.keep_named("SELECT 1", None, None)
    assert cache.named("SELECT 1", None) is None and cache.named("SELECT 1", "duckdb") is NOT_SEEN
