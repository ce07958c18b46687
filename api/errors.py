"""The one place errors become HTTP answers: `{"error", "message", "details"}`, never a trace."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.bodies import UNKNOWN_FIELD
from lakehouse.auth.identity import check_tenant_name
from lakehouse.errors import LakehouseError
from lakehouse.schema.names import check_table_name

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 411: "length_required",
    413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid_request",
    429: "too_many_requests", 503: "unavailable",
}


class ErrorBody(BaseModel):
    """Every error answer of every service."""

    error: str = Field(description="A machine-readable code, e.g. `invalid_input`")
    message: str = Field(description="What went wrong and what to do next")
    details: Any = Field(description="What the code needs to say more (an object or a list)")


# The statuses any operation may answer, declared once for every operation of every service
# (each with the one error body): what a client generated from the documents must expect.
_DECLARED = {
    400: "The request is wrong (the code says how)",
    401: "No valid credentials",
    403: "The credentials do not allow this",
    404: "Not found, or not the caller's to see",
    408: "A query ran past its time limit (its `timeout_s`, or QUERY_TIMEOUT_S)",
    409: "A conflict with the current state (retry after re-reading, when `retryable`)",
    413: "The body is over the endpoint's limit",
    415: "The body's media type is not one the endpoint reads",
    422: "The request does not fit the operation's parameters or body",
    429: "Over a rate or concurrency limit; `Retry-After` says when to retry",
    503: "A dependency is down or the platform sheds load; `Retry-After` when a retry may help",
    507: "The disk under the write-ahead log is full: nothing is acknowledged until an operator "
         "frees space; `Retry-After` says when to try again",
}
# The wait a retryable refusal names when its error did not choose one, in seconds.
RETRY_AFTER_S = {429: 1, 503: 5, 507: 60}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying",
                                "schema": {"type": "integer", "minimum": 0}}}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description,
             **({"headers": _RETRY_AFTER} if status in RETRY_AFTER_S else {})}
    for status, description in _DECLARED.items()}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": code, "message": message, "details": details if details is not None else {}}


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    problems = []
    for err in exc.errors():
        location = [str(part) for part in err.get("loc", ())]
        fields = (err.get("ctx") or {}).get("fields")
        if err.get("type") == UNKNOWN_FIELD and isinstance(fields, list) and len(fields) == 1:
            location.append(str(fields[0]))  # where pydantic's own extra_forbidden points
        problems.append({"location": location, "problem": err.get("msg", ""),
                         "type": err.get("type", "")})
    return problems


def _unknown_fields_message(problems: list[dict[str, Any]]) -> str | None:
    """The message naming every unknown field, when unknown fields are all that is wrong."""
    if not problems or any(p["type"] not in (UNKNOWN_FIELD, "extra_forbidden")
                           for p in problems):
        return None
    parts = []
    for problem in problems:
        location = problem["location"]
        if problem["type"] == "extra_forbidden":  # a body without api.bodies.StrictBody
            text, within = f"unknown field `{location[-1]}`", location[1:-1]
        else:
            text, within = problem["problem"], location[1:-1] if len(location) > 2 else []
        parts.append(f"{text} (in {'.'.join(within)})" if within else text)
    return "; ".join(parts)


async def _lakehouse_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, LakehouseError):  # pragma: no cover - registered for this type
        return await _unexpected(_request, exc)
    if exc.http_status >= 500:
        log.error("request failed", extra={"error": exc.code, "detail": exc.message})
    return JSONResponse(exc.to_body(), status_code=exc.http_status, headers=headers_of(exc))


def headers_of(exc: LakehouseError) -> dict[str, str] | None:
    """The error's headers, with a Retry-After on a retryable 429, 503 or 507 that named none."""
    headers = dict(exc.headers or {})
    wait = RETRY_AFTER_S.get(exc.http_status)
    if wait is not None and exc.retryable and not any(
            name.lower() == "retry-after" for name in headers):
        headers["Retry-After"] = str(wait)
    return headers or None


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):  # pragma: no cover
        return await _unexpected(request, exc)
    details = _validation_details(exc)
    broken = _broken_name_rule(exc)
    if broken is not None:  # the schema states the rule; the answer stays the code's own
        check, name = broken
        try:
            check(name)
        except LakehouseError as refused:
            return await _lakehouse_error(request, refused)
    body_problem = any(d["type"] == "json_invalid" for d in details)
    # The code stays invalid_request (clients match on it); the message names unknown fields
    # (the field meant, where it is clear) and says what to do for the other problems.
    hints = _hints(details, exc.body, request.headers.get("content-type", ""))
    unknown = _unknown_fields_message(details)
    message = ("the request body is not valid JSON" if body_problem
               else unknown if unknown
               else "; ".join(hints) if hints
               else "the request does not have the expected shape; see details")
    return JSONResponse(error_body("invalid_request", message, {"problems": details}),
                        status_code=422)


_NAME_RULE_TYPES = frozenset({"string_pattern_mismatch", "string_too_long", "string_too_short"})


# Names whose rule the documents state and the code enforces, by where they are sent (the end
# of the problem's location) → the check whose refusal is the answer.
_NAME_CHECKS: dict[tuple[str, ...], Callable[[str], str]] = {
    ("table",): check_table_name,
    ("header", "x-tenant-id"): check_tenant_name,
}


def _broken_name_rule(exc: RequestValidationError) -> tuple[Callable[[str], str], str] | None:
    """The check and the name, when one name breaking its rule is all that is wrong."""
    errors = exc.errors()
    if len(errors) != 1 or errors[0].get("type") not in _NAME_RULE_TYPES:
        return None
    location, name = tuple(errors[0].get("loc", ())), errors[0].get("input")
    for tail, check in _NAME_CHECKS.items():
        if location[-len(tail):] == tail and isinstance(name, str):
            return check, name
    return None


# Fields people send under another name (another API's habit) → the field meant.
FIELD_HINTS = {"sql": "query"}
_NOT_AN_OBJECT = frozenset({"model_attributes_type", "dict_type", "model_type"})
_JSON_KINDS = {"list": "an array", "str": "a string", "int": "a number", "float": "a number",
               "bool": "true or false", "NoneType": "null"}


def _hints(details: list[dict[str, Any]], body: Any, content_type: str) -> list[str]:
    """What to do about the body's problems, in the caller's terms (pydantic's own words stay
    in details): send JSON at all, a field's right name, a field that is missing."""
    hints: list[str] = []
    given = body if isinstance(body, dict) else {}
    for problem in details:
        location, kind = problem["location"], problem["type"]
        if location == ["body"] and kind in _NOT_AN_OBJECT:
            if "json" not in content_type.lower():
                hints.append("send the body as JSON with Content-Type: application/json")
            else:
                hints.append("the body must be a JSON object ({...}), not "
                             + _JSON_KINDS.get(type(body).__name__, "this"))
        elif location == ["body"] and kind == "value_error":  # a model's own check
            hints.append(str(problem["problem"]).removeprefix("Value error, "))
        elif len(location) == 2 and location[0] == "body" and kind == "extra_forbidden":
            meant = FIELD_HINTS.get(location[1])
            hints.append(f'unknown field "{location[1][:40]}"' + (
                f'; the field is named "{meant}"' if meant else "; see /docs for the fields"))
        elif len(location) == 2 and location[0] == "body" and kind == "missing":
            field = location[1]
            sent = next((k for k, v in FIELD_HINTS.items() if v == field and k in given), None)
            hints.append(f'unknown field "{sent}"; the field is named "{field}"' if sent
                         else f'missing field "{field}"')
    return list(dict.fromkeys(hints))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover
        return await _unexpected(request, exc)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        allowed = _documented_methods(request) or headers.get("Allow", "").split(", ")
        headers["Allow"] = ", ".join(allowed)
        message = f"{request.method} is not served here; this path serves {', '.join(allowed)}"
    return JSONResponse(error_body(code, message), status_code=exc.status_code,
                        headers=headers or None)


def _documented_methods(request: Request) -> list[str]:
    """The methods the app's OpenAPI document lists for this path. Starlette's
    own 405 names only the methods of the first route whose path matches, so `/auth/users`
    (a GET route and a POST route) would say `Allow: GET`."""
    paths: list[tuple[re.Pattern[str], list[str]]] | None = getattr(
        request.app.state, "documented_methods", None)
    if paths is None:
        paths = []
        for template, operations in request.app.openapi().get("paths", {}).items():
            methods = sorted(m.upper() for m in operations)
            paths.append((re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))),
                          methods))
        request.app.state.documented_methods = paths
    return next((methods for pattern, methods in paths if pattern.fullmatch(request.url.path)),
                [])


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return JSONResponse(
        error_body("internal_error", "an unexpected error occurred; the request id in the "
                   "X-Request-Id header finds it in the logs"), status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(LakehouseError, _lakehouse_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
