"""The errors of the client, one class per way a call can fail, so a caller catches what it
can handle (``except NotFound``) and a CLI can say what to do next.

Every error carries the HTTP ``status`` (0 when no answer came) and the server's JSON
``body`` as sent; ``ValidationError.errors`` is that body: each bad field mapped to its
messages, nested as the server nests them (``{"jobs": {"0": {"type": [...]}}}``).
"""

from __future__ import annotations

from typing import Any


class DraconicError(Exception):
    """Any failure of a Draconic call."""

    def __init__(self, message: str, *, status: int = 0, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body


class ValidationError(DraconicError):
    """400: the request was refused field by field; nothing was stored."""

    @property
    def errors(self) -> dict[str, Any]:
        """The field errors as the server sent them (``{"priority": ["..."]}``)."""
        return self.body if isinstance(self.body, dict) else {"detail": [str(self.body)]}


class AuthenticationError(DraconicError):
    """401: no token, or one the server does not know."""


class PermissionDenied(DraconicError):
    """403: the token's user may not do this (the ``/admin/...`` calls are for staff)."""


class NotFound(DraconicError):
    """404: no such job among yours (or no such dead letter, or page)."""


class Conflict(DraconicError):
    """409: the job's state does not allow this, or an idempotency key was reused for a
    different request (then ``job_id`` is the job first stored under it)."""

    @property
    def job_id(self) -> str | None:
        return self.body.get("job_id") if isinstance(self.body, dict) else None


class RateLimited(DraconicError):
    """429: too many requests; ``retry_after`` is the seconds the server asked to wait."""

    def __init__(
        self, message: str, *, status: int = 429, body: Any = None, retry_after: float = 1.0
    ) -> None:
        super().__init__(message, status=status, body=body)
        self.retry_after = retry_after


class ServerUnavailable(DraconicError):
    """No usable answer: the server is unreachable (``url`` names what was tried), or it
    answered 502/503/504 (PostgreSQL or Redis down behind it; ``retry_after`` if it said)."""

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status: int = 0,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, body=body)
        self.url = url
        self.retry_after = retry_after


class Timeout(DraconicError):
    """``wait`` reached its timeout before every job had ended."""


_BY_STATUS: dict[int, type[DraconicError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
}


def parse_retry_after(value: str | None, default: float = 1.0) -> float:
    """``Retry-After`` in seconds (the HTTP-date form is not used by Draconic: ``default``)."""
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


def error_for(*, status: int, body: Any, url: str, retry_after: str | None = None) -> DraconicError:
    """The error of an HTTP answer with a status of 400 or more."""
    message = _message(body) or f"HTTP {status}"
    if status == 429:
        return RateLimited(
            message, status=status, body=body, retry_after=parse_retry_after(retry_after)
        )
    if status in (502, 503, 504):
        wait = parse_retry_after(retry_after) if retry_after is not None else None
        return ServerUnavailable(
            f"{url}: {message}", url=url, status=status, body=body, retry_after=wait
        )
    kind = _BY_STATUS.get(status, DraconicError)
    return kind(message, status=status, body=body)


def _message(body: Any) -> str:
    """One line from an error body: its ``detail``, or each field with its messages."""
    if isinstance(body, dict):
        if set(body) == {"detail"}:
            return str(body["detail"])
        return "; ".join(f"{k}: {_flat(v)}" for k, v in body.items() if k != "job_id")
    return str(body or "")[:300]


def _flat(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(_flat(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_flat(v)}" for k, v in value.items())
    return str(value)
