"""Sending a ``Call``: the one place that speaks HTTP, in a blocking and an asyncio flavour
that share every decision (``read_answer``, ``retry_delay``).

Retries: only an idempotent call is repeated, after a 429 (waiting the server's
``Retry-After``), a 502/503/504 or a lost connection, at most ``retries`` times and never
waiting longer than ``max_retry_wait`` at once. A submit is idempotent because its body
always carries an idempotency key, the same one on every repeat, so the server answers the
repeat with the job the first try stored.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, TypeVar

import httpx

from draconic_sdk._version import __version__
from draconic_sdk.calls import Call
from draconic_sdk.config import HOW_TO_AUTHENTICATE, Settings
from draconic_sdk.errors import (
    AuthenticationError,
    DraconicError,
    RateLimited,
    ServerUnavailable,
    error_for,
)

T = TypeVar("T")

#: Pauses between repeats after a lost connection (no Retry-After to honour).
BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)


def headers(settings: Settings) -> dict[str, str]:
    sent = {"User-Agent": f"draconic-sdk/{__version__}", "Accept": "application/json"}
    if settings.token:
        sent["Authorization"] = f"Token {settings.token}"
    return sent


def read_answer(
    call: Call[T],
    *,
    status: int,
    content: bytes,
    content_type: str,
    url: str,
    retry_after: str | None,
) -> T:
    """The value of an answer, or the typed error it stands for."""
    body: Any = content
    if not call.binary or status >= 400:
        body = _decode(content, content_type)
    if status >= 400 and status not in call.ok_statuses:
        error = error_for(status=status, body=body, url=url, retry_after=retry_after)
        if isinstance(error, AuthenticationError):
            error.message = f"{error.message}. {HOW_TO_AUTHENTICATE}"
            error.args = (error.message,)
        raise error
    return call.parse(body)


def _decode(content: bytes, content_type: str) -> Any:
    if "json" not in content_type:
        return content.decode(errors="replace")
    try:
        return json.loads(content)
    except ValueError:
        return content.decode(errors="replace")


def unreachable(settings: Settings, exc: Exception) -> ServerUnavailable:
    """The error of a request that got no answer: names the URL tried."""
    return ServerUnavailable(
        f"cannot reach the Draconic server at {settings.url} ({type(exc).__name__}: {exc}); "
        "is it running? Set DRACONIC_URL (or --url) if it lives elsewhere",
        url=settings.url,
    )


def retry_delay(
    call: Call[Any], error: DraconicError, attempt: int, settings: Settings
) -> float | None:
    """Seconds to wait before repeating ``call`` after ``error`` on try ``attempt`` (0 is the
    first), or None to give up and raise."""
    if not call.idempotent or attempt >= settings.retries:
        return None
    if isinstance(error, RateLimited):
        return min(error.retry_after, settings.max_retry_wait)
    if isinstance(error, ServerUnavailable):
        wait = error.retry_after if error.retry_after is not None else BACKOFF[min(attempt, 4)]
        return min(wait, settings.max_retry_wait)
    return None


def _request_args(call: Call[Any]) -> dict[str, Any]:
    args: dict[str, Any] = {"params": dict(call.params)}
    if call.json is not None:
        args["json"] = call.json
    return args


class SyncTransport:
    """Blocking calls over one pooled ``httpx.Client``."""

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self.http = httpx.Client(
            base_url=settings.url,
            headers=headers(settings),
            timeout=settings.timeout,
            transport=transport,
        )

    def run(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                return self._once(call)
            except DraconicError as error:
                wait = retry_delay(call, error, attempt, self.settings)
                if wait is None:
                    raise
            time.sleep(wait)
            attempt += 1

    def _once(self, call: Call[T]) -> T:
        try:
            answer = self.http.request(call.method, call.path, **_request_args(call))
        except httpx.TransportError as exc:
            raise unreachable(self.settings, exc) from exc
        return read_answer(
            call,
            status=answer.status_code,
            content=answer.content,
            content_type=answer.headers.get("content-type", ""),
            url=str(answer.request.url),
            retry_after=answer.headers.get("retry-after"),
        )

    def close(self) -> None:
        self.http.close()


class AsyncTransport:
    """asyncio calls over one pooled ``httpx.AsyncClient``."""

    def __init__(
        self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.http = httpx.AsyncClient(
            base_url=settings.url,
            headers=headers(settings),
            timeout=settings.timeout,
            transport=transport,
        )

    async def run(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                return await self._once(call)
            except DraconicError as error:
                wait = retry_delay(call, error, attempt, self.settings)
                if wait is None:
                    raise
            await asyncio.sleep(wait)
            attempt += 1

    async def _once(self, call: Call[T]) -> T:
        try:
            answer = await self.http.request(call.method, call.path, **_request_args(call))
        except httpx.TransportError as exc:
            raise unreachable(self.settings, exc) from exc
        return read_answer(
            call,
            status=answer.status_code,
            content=answer.content,
            content_type=answer.headers.get("content-type", ""),
            url=str(answer.request.url),
            retry_after=answer.headers.get("retry-after"),
        )

    async def aclose(self) -> None:
        await self.http.aclose()
