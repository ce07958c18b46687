"""What Schemathesis' checks report that is the platform's design, not a disagreement between
a service and its OpenAPI document: each with why the document cannot say more.

The fuzz test in `make test` (tests/integration/test_openapi_fuzz.py) and the longer run
(tools/openapi_checks.py) allow exactly these; anything else they find is a finding.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.openapi.checks import RejectedPositiveData

from api.services import Service

# A request the schema allows, refused for what no JSON Schema states (by error code):
BEYOND_THE_SCHEMA: dict[str, str] = {
    "syntax_error": "SQL text: the document says a non-blank string, SQL's grammar is no "
                    "JSON Schema",
    "unknown_table": "a table the tenant does not have: a fact of its data, not of a request",
    "unknown_column": "a column its table does not have: likewise",
    "invalid_dsl": "a DSL tree's conditions and expressions are SQL text",
    "invalid_filter": "a partition filter is SQL text",
    "type_mismatch": "SQL's types: likewise",
    "invalid_query": "SQL that parses but is not one read-only query",
    "empty_query": "SQL of only comments or semicolons: not blank, yet no statement",
    "invalid_data_id": "a key's limit is 256 bytes of UTF-8, and JSON Schema counts "
                       "characters (the document states bytes in words)",
    "conflicting_snapshots": "a body's `snapshot` and the query's ?snapshot= naming two "
                             "different snapshots: no schema relates a body to a parameter",
    "mixed_list": "the lists (or objects) in a list agree in their own items' (or fields') "
                  "types: PayloadValue states it for a list's own items, no JSON Schema "
                  "relates one item's contents to another's",
    "invalid_field_name": "a field name inside a list of lists: PayloadValue types lists one "
                          "level deep (client generators cannot read a union that refers to "
                          "itself); every other field name is in the schema",
    "invalid_declaration": "a declared decimal's scale over its precision (two numbers in one "
                           "string), a check's value its column's type cannot hold: "
                           "ColumnType states the rest",
    "invalid_schema": "a type in its stored form (StoredType) with a decimal's scale over its "
                      "precision or a struct's field named twice: no JSON Schema relates two "
                      "numbers of an object, or keeps the names in a list of objects unique",
}
# A request the schema allows that the platform ran and stopped at a limit (by error code):
WITHIN_LIMITS: dict[str, str] = {
    "query_timeout": "a valid query that ran past QUERY_TIMEOUT_S (a generated cross join of "
                     "a table with itself, say): no schema states how long a query runs",
}
# (check, service, "METHOD /path") → why its finding is by design.
BY_DESIGN: dict[tuple[str, Service, str], str] = {
    ("negative_data_rejection", Service.TENANT, "POST /data/store"):
        "a batch keeps its good records and reports each bad one in `records` (200)",
}


_CHECKS: dict[type, str] = {RejectedPositiveData: "positive_data_acceptance",
                             AcceptedNegativeData: "negative_data_rejection"}


# Refused whole, before its content is read, valid or not (by status):
BEFORE_READING: dict[int, str] = {
    413: "a body over its endpoint's byte limit: JSON Schema counts characters and items, "
         "not the bytes a body takes (a 100,000-character query of escaped non-BMP "
         "characters is over 1 MiB)",
}


def by_design(failure: Exception, response: Any, service: Service, operation: str) -> bool:
    """Whether a check's failure on an answer of `operation` ("METHOD /path") is allowed."""
    check = _CHECKS.get(type(failure))
    if (check, service, operation) in BY_DESIGN:
        return True
    if check is not None and response.status_code in BEFORE_READING:
        return True
    if check != "positive_data_acceptance" or response.status_code not in (400, 408):
        return False
    try:
        code = response.json().get("error")
    except ValueError:
        return False
    return code in BEYOND_THE_SCHEMA or code in WITHIN_LIMITS


def lost_in_sending(failure: Exception, case: Any, response: Any) -> bool:
    """Whether a negative case was accepted only because what made it invalid never reached the
    service: the caller's own Authorization replaces a mutated one, and an extra query
    parameter the HTTP client dropped (an empty name, a value of None) is not in the URL. Such
    a request is valid as sent, and so rightly accepted."""
    if not isinstance(failure, AcceptedNegativeData):
        return False
    data = getattr(getattr(getattr(case, "meta", None), "phase", None), "data", None)
    described = str(getattr(data, "description", "") or "")
    parts = [p.strip() for p in described.splitlines() if p.strip()]
    if not parts:
        return False
    query = urllib.parse.urlsplit(str(response.request.url)).query
    sent = set(urllib.parse.parse_qs(query, keep_blank_values=True))
    documented = {p.name for p in case.operation.query}
    for part in parts:
        if part.startswith("- header:") and "Authorization" in part:
            continue
        if part.startswith("- query:") and "additionalProperties" in part and sent <= documented:
            continue
        return False
    return True
