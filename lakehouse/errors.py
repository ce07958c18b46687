"""One root error with a machine-readable code, a retryable flag and the HTTP status it means.

The edge (api/errors.py) renders every LakehouseError the same way; the domain raises these and
never builds HTTP responses itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class LakehouseError(Exception):
    """Root of every error the platform raises on purpose."""

    code: ClassVar[str] = "internal_error"
    http_status: ClassVar[int] = 500
    retryable: ClassVar[bool] = False

    def __init_subclass__(cls, *, code: str | None = None, status: int | None = None,
                          retryable: bool | None = None, **kwargs: Any) -> None:
        """Each error type declares its code, HTTP status and whether a retry may help in its
        class line: `class NotFound(LakehouseError, code="not_found", status=404)`."""
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code
        if status is not None:
            cls.http_status = status
        if retryable is not None:
            cls.retryable = retryable

    def __init__(
        self,
        message: str,
        *,
        details: Mapping[str, Any] | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        self.headers: dict[str, str] = dict(headers or {})
        if code is not None:
            self.code = code  # type: ignore[misc]

    def to_body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "details": self.details}


class InvalidInput(LakehouseError, code="invalid_input", status=400):
    """The request itself is wrong; repeating it will not help."""


class Unauthenticated(LakehouseError, code="unauthenticated", status=401):
    """No valid credentials: missing, malformed, expired or revoked."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class Forbidden(LakehouseError, code="forbidden", status=403):
    """Valid credentials that do not allow this."""


class NotFound(LakehouseError, code="not_found", status=404):
    """What the request names does not exist, or is not the caller's to see."""


class Conflict(LakehouseError, code="conflict", status=409, retryable=True):
    """A commit precondition failed; re-reading and retrying may succeed."""


class Unavailable(LakehouseError, code="unavailable", status=503, retryable=True):
    """A dependency is down or the platform is shedding load; retry later."""


class NotServed(Unavailable, code="not_served", retryable=False):
    """This process does not run what the request needs (a setting, not a passing state): a
    retry here cannot help, so no Retry-After is sent."""


class ConfigurationError(LakehouseError, code="configuration_error", status=500):
    """The process cannot start with these settings."""


class WalCorrupted(LakehouseError, code="wal_corrupted", status=503):
    """The write-ahead log holds less or other than it should; serving from it could lose data."""


class StorageFull(LakehouseError, code="storage_full", status=507, retryable=True):
    """The disk under the write-ahead log is full; nothing more is acknowledged until fixed."""


class WalUnavailable(LakehouseError, code="wal_unavailable", status=503, retryable=True):
    """The write-ahead log cannot be used right now (not open, held by another process, failing)."""


class RateLimited(LakehouseError, code="rate_limited", status=429, retryable=True):
    """The caller sends faster than its rate allows; the Retry-After header says when to retry."""


class PayloadTooLarge(LakehouseError, code="payload_too_large", status=413):
    """The body is over the endpoint\'s limit; send less per request."""


class UnsupportedMediaType(LakehouseError, code="unsupported_media_type", status=415):
    """The body\'s Content-Type is not one the endpoint reads."""


# The query's own outcomes ---------------------------------------------------------------------

class QueryFailed(LakehouseError, code="query_failed", status=500, retryable=True):
    """Something broke while running the query that is not the query's fault."""


class QueryCancelled(LakehouseError, code="query_cancelled", status=409):
    """The query was cancelled before it finished."""


class QueryTimeout(LakehouseError, code="query_timeout", status=408, retryable=True):
    """The query ran past its time limit."""
