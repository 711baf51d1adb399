"""What the client does with the WebSocket feed (``/jobs/stream``), apart from the socket
itself: which URL to connect to, how to resume after a drop, and what each message means.
The blocking and asyncio loops (``client``, ``aio``) only move frames through these.

Resuming: the server replays the logged changes after ``since`` and then sends live ones; it
never sends a cursor twice on one socket. Across sockets ``FeedState`` drops every cursor it
already yielded. It resumes from ``REWIND`` cursors before the highest one it saw, not from the
highest: cursors are log ids, and the transactions of different jobs commit out of order, so
an event with a smaller cursor than one already seen can commit (and be missed) during the
drop. Rewinding re-reads a short stretch of the log and the dedupe hides what it re-reads.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from draconic_sdk.errors import AuthenticationError, DraconicError, NotFound, PermissionDenied
from draconic_sdk.models import Event

#: How far behind the highest cursor seen a resumed socket starts replaying.
REWIND = 1000
#: Most cursors remembered for the dedupe (those far below the resume point are forgotten).
MEMORY = 50_000
#: Pauses between reconnection attempts; the last one repeats.
RECONNECT_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0)


def socket_url(ws_url: str, token: str | None, **query: Any) -> str:
    """The feed's URL with the token and the given (non-None) query parameters."""
    params = {k: str(v) for k, v in query.items() if v is not None}
    if token:
        params = {"token": token, **params}
    return f"{ws_url}?{urlencode(params)}" if params else ws_url


def error_of(message: dict[str, Any]) -> DraconicError:
    """The typed error of a ``{"type": "error"}`` message."""
    code, detail = message.get("code"), str(message.get("detail", "stream error"))
    if code == 4401:
        return AuthenticationError(detail, status=401, body=message)
    if code == 4403:
        return PermissionDenied(detail, status=403, body=message)
    if code == "not_found":
        return NotFound(detail, status=404, body=message)
    return DraconicError(f"{code}: {detail}", body=message)


def decode(frame: str | bytes) -> dict[str, Any]:
    message = json.loads(frame)
    return message if isinstance(message, dict) else {"type": "unknown"}


@dataclass
class FeedState:
    """One logical stream over any number of sockets: its filters and the cursors it yielded."""

    job: str | None = None
    batch: str | None = None
    since: int | None = None
    highest: int | None = None
    seen: set[int] = field(default_factory=set)
    order: deque[int] = field(default_factory=deque)
    #: Set by ``replay_truncated``: the socket should be replaced to page on.
    must_reconnect: bool = False

    def resume_since(self) -> int | None:
        """The ``since`` of the next socket: None (live only) until a cursor is known."""
        if self.highest is None:
            return self.since
        floor = self.since if self.since is not None else 0
        return max(floor, self.highest - REWIND)

    def url(self, ws_url: str, token: str | None) -> str:
        return socket_url(ws_url, token, job=self.job, batch=self.batch, since=self.resume_since())

    def accept(self, message: dict[str, Any]) -> Event | None:
        """The event to yield for ``message``, or None (a control message or a repeat);
        raises the typed error of an error message."""
        kind = message.get("type")
        if kind == "error":
            raise error_of(message)
        if kind == "replay_truncated":
            self.must_reconnect = True
            return None
        if kind != "job_update":
            return None
        event = Event.from_json(message)
        if event.cursor in self.seen:
            return None
        self._remember(event.cursor)
        return event

    def _remember(self, cursor: int) -> None:
        self.seen.add(cursor)
        self.order.append(cursor)
        self.highest = cursor if self.highest is None else max(self.highest, cursor)
        while len(self.order) > MEMORY:
            self.seen.discard(self.order.popleft())


def reconnect_delay(failures: int) -> float:
    return RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]


@dataclass
class Waiter:
    """The jobs one ``wait`` follows: the final Job of each that has ended."""

    ids: list[str]
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def pending(self) -> list[str]:
        return [i for i in dict.fromkeys(self.ids) if i not in self.results]

    def record(self, job: Any) -> None:
        """Keep ``job`` (a ``Job``) if it has ended."""
        if job.done:
            self.results[job.id] = job

    def final(self) -> list[Any]:
        return [self.results[i] for i in self.ids]
