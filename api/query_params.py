"""Query parameters a route does not define are refused, not ignored; nor is one given twice
where the route takes one value (which of the two would count is a guess the caller cannot see).

`GET /query/plan?snapshot_id=3` used to plan at the newest snapshot, as if the caller had not
asked for another: an ignored parameter turns into a confident wrong answer. Every route's
known parameters are read from its FastAPI dependant (its own and its dependencies'), once.
"""

from __future__ import annotations

import collections.abc
import difflib
import types
import typing
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from lakehouse.errors import InvalidInput

_CLOSE = 0.7
_SHOWN = 10
# The largest number a numeric parameter may hold: snapshot ids, sequence numbers and row
# offsets are 64-bit in the catalog, the log and Arrow, so a larger one (10**30) must be a 422
# like any other out-of-range value, not an overflow deep inside a database driver. The bound
# is the largest integer every JSON reader keeps exactly (JavaScript's MAX_SAFE_INTEGER): at
# 2**63 - 1 a client holding numbers as doubles reads the documented maximum as 2**63 and
# sends that, an "allowed" value the service must refuse.
MAX_COUNT = 2**53 - 1


def refuse_unknown_query_params(request: Request) -> None:
    """A dependency of every route: 400 `unknown_parameter` naming what the route lacks."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known, lists = _known(route)
    unknown = [name for name in request.query_params if name not in known]
    if not unknown:
        repeated = sorted({name for name, _ in request.query_params.multi_items()
                           if name not in lists and len(request.query_params.getlist(name)) > 1})
        if repeated:
            raise InvalidInput(f"query parameter given more than once: {', '.join(repeated)}; "
                               "this endpoint takes one value of each",
                               code="repeated_parameter", details={"parameters": repeated})
        return
    hints = []
    for name in unknown[:_SHOWN]:
        meant = difflib.get_close_matches(name, sorted(known), n=1, cutoff=_CLOSE)
        hints.append(f"{name} (did you mean {meant[0]}?)" if meant else name)
    accepted = ", ".join(sorted(known)) or "none"
    raise InvalidInput(f"unknown query parameter: {', '.join(hints)}; this endpoint takes: "
                       f"{accepted}", code="unknown_parameter",
                       details={"parameters": [n[:100] for n in unknown[:_SHOWN]],
                                "accepted": sorted(known)})


def _known(route: APIRoute) -> tuple[frozenset[str], frozenset[str]]:
    """The route's query parameters, and those of them that take a list. Kept on the route
    itself (routes are not hashable, and live as long as their app)."""
    found: tuple[frozenset[str], frozenset[str]] | None = getattr(
        route, "_known_query_params", None)
    if found is None:
        params = _params(route.dependant)
        found = (frozenset(p.alias for p in params),
                 frozenset(p.alias for p in params if _takes_a_list(p.field_info.annotation)))
        route._known_query_params = found  # type: ignore[attr-defined]
    return found


def _params(dependant: Dependant) -> list[Any]:
    params = list(dependant.query_params)
    for sub in dependant.dependencies:
        params += _params(sub)
    return params


def _takes_a_list(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        return any(_takes_a_list(a) for a in typing.get_args(annotation))
    return origin in (list, tuple, set, frozenset, collections.abc.Sequence)
