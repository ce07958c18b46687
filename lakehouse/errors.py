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


class InvalidInput(LakehouseError):
    """The request itself is wrong; repeating it will not help."""

    code = "invalid_input"
    http_status = 400


class Unauthenticated(LakehouseError):
    """No valid credentials: missing, malformed, expired or revoked."""

    code = "unauthenticated"
    http_status = 401

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class Forbidden(LakehouseError):
    """Valid credentials that do not allow this."""

    code = "forbidden"
    http_status = 403


class NotFound(LakehouseError):
    code = "not_found"
    http_status = 404


class Conflict(LakehouseError):
    """A commit precondition failed; re-reading and retrying may succeed."""

    code = "conflict"
    http_status = 409
    retryable = True


class Unavailable(LakehouseError):
    """A dependency is down or the platform is shedding load; retry later."""

    code = "unavailable"
    http_status = 503
    retryable = True


class ConfigurationError(LakehouseError):
    """The process cannot start with these settings."""

    code = "configuration_error"
    http_status = 500


class WalCorrupted(LakehouseError):
    """The write-ahead log holds less or other than it should; serving from it could lose data."""

    code = "wal_corrupted"
    http_status = 503


class StorageFull(LakehouseError):
    """The disk under the write-ahead log is full; nothing more is acknowledged until fixed."""

    code = "storage_full"
    http_status = 507
    retryable = True


class WalUnavailable(LakehouseError):
    """The write-ahead log cannot be used right now (not open, held by another process, failing)."""

    code = "wal_unavailable"
    http_status = 503
    retryable = True


class RateLimited(LakehouseError):
    """The caller sends faster than its rate allows; the Retry-After header says when to retry."""

    code = "rate_limited"
    http_status = 429
    retryable = True


class PayloadTooLarge(LakehouseError):
    code = "payload_too_large"
    http_status = 413


class UnsupportedMediaType(LakehouseError):
    code = "unsupported_media_type"
    http_status = 415


# The query's own outcomes ---------------------------------------------------------------------

class QueryFailed(LakehouseError):
    """Something broke while running the query that is not the query's fault."""

    code = "query_failed"
    http_status = 500
    retryable = True


class QueryCancelled(LakehouseError):
    code = "query_cancelled"
    http_status = 409
    retryable = False


class QueryTimeout(LakehouseError):
    code = "query_timeout"
    http_status = 408
    retryable = True
