"""``Client``: the blocking client. Each REST method sends one ``calls`` description through
the transport; ``stream`` and ``wait`` follow the WebSocket feed (``feed``).

    from draconic_sdk import Client
    with Client() as client:                      # DRACONIC_URL, DRACONIC_TOKEN
        job = client.submit("noop", {"seconds": 1})
        job = client.wait(job, timeout=60)        # the final Job
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, overload

import httpx
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

from draconic_sdk import calls, feed
from draconic_sdk.calls import job_id_of
from draconic_sdk.config import Settings, settings
from draconic_sdk.errors import ServerUnavailable, Timeout
from draconic_sdk.graph import Graph, JobOptions
from draconic_sdk.models import (
    BatchResult,
    Event,
    Health,
    Job,
    JobTypeInfo,
    LogEntry,
)
from draconic_sdk.namespaces import DeadLetters, Dependencies, pages
from draconic_sdk.pauses import Pauses
from draconic_sdk.rules import Limits, Schedules
from draconic_sdk.transport import SyncTransport, headers

#: Socket failures after which ``stream`` reconnects and ``wait`` reconnects or polls.
SOCKET_ERRORS = (OSError, ConnectionClosed, InvalidHandshake, InvalidURI, TimeoutError)
#: While waiting on a socket, how often the jobs are also read over REST (pub/sub delivers
#: at most once, so a lost event must not leave ``wait`` waiting forever).
SAFETY_POLL_SECONDS = 10.0
StatusCallback = Callable[[str, str], None]


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def _left(deadline: float | None, cap: float) -> float:
    if deadline is None:
        return cap
    return max(0.0, min(cap, deadline - time.monotonic()))


class Client:
    """The blocking Draconic client (one connection pool; close it, or use ``with``).

    ``url``/``token`` default to ``DRACONIC_URL``/``DRACONIC_TOKEN``. ``retries``: how many
    times an idempotent call is repeated after a 429, a 503 or a lost connection.
    ``transport``: an ``httpx`` transport (a proxy, a test's fault injector).
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        max_retry_wait: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings: Settings = settings(
            url, token, timeout=timeout, retries=retries, max_retry_wait=max_retry_wait
        )
        self.transport = SyncTransport(self.settings, transport)
        self.dependencies = Dependencies(self)
        self.dlq = DeadLetters(self)
        self.schedules = Schedules(self)
        self.limits = Limits(self)
        self.pauses = Pauses(self)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    def submit(
        self,
        type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        priority: str | None = None,
        cpu_units: int | None = None,
        memory_mb: int | None = None,
        depends_on: Iterable[str | Job] = (),
        max_attempts: int | None = None,
        timeout_seconds: int | None = None,
        idempotency_key: str | None = None,
        run_at: datetime | str | None = None,
        delay_seconds: float | None = None,
        concurrency_key: str | None = None,
        job_id: str | None = None,
        priority_rank: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Job:
        """Store a job (``POST /jobs/``); unset options take the type's defaults. Without an
        ``idempotency_key`` one is generated, and every automatic retry reuses it. ``job_id``: the
        id the new job gets (a UUID the caller chose); ``priority_rank``: an exact priority
        within the level (-100..100, larger sooner), kept with the job."""
        options = JobOptions(
            priority=priority,
            cpu_units=cpu_units,
            memory_mb=memory_mb,
            max_attempts=max_attempts,
            timeout_seconds=timeout_seconds,
            run_at=run_at,
            delay_seconds=delay_seconds,
            concurrency_key=concurrency_key,
        )
        call = calls.submit(
            type,
            payload,
            options=options,
            depends_on=depends_on,
            idempotency_key=idempotency_key,
            extra=calls.identity(job_id, priority_rank, extra),
        )
        return self.transport.run(call)

    def submit_graph(self, graph: Graph) -> BatchResult:
        """Store a whole graph in one atomic batch; its jobs by key (``result.jobs["a"]``)."""
        return self.transport.run(calls.submit_graph(graph))

    def get(self, job: str | Job) -> Job:
        return self.transport.run(calls.get(job))

    def list(
        self,
        *,
        status: str | None = None,
        type: str | None = None,
        priority: str | None = None,
        scheduled: bool | None = None,
        limit: int | None = None,
        page_size: int = 100,
    ) -> Iterator[Job]:
        """Your jobs, newest first, every page (or the first ``limit``), with the filters.
        ``scheduled``: True keeps only the jobs waiting for their time (a ``run_at``, a
        retry's backoff), False only the others."""

        def fetch(page: int) -> calls.Page[Job]:
            call = calls.jobs_page(
                page=page,
                page_size=page_size,
                status=status,
                type=type,
                priority=priority,
                scheduled=scheduled,
            )
            return self.transport.run(call)

        return pages(fetch, key=lambda j: j.id, limit=limit)

    def cancel(self, job: str | Job) -> Job:
        """Cancel a job: at once unless it runs (then ``cancel_requested``); 409 if ended."""
        return self.transport.run(calls.cancel(job))

    def logs(self, job: str | Job, *, since: int | None = None) -> builtins.list[LogEntry]:
        """The job's log lines after log id ``since`` (all of them by default), oldest first."""
        fetch = lambda page: self.transport.run(calls.logs_page(job, since=since, page=page))  # noqa: E731
        return [*pages(fetch, key=lambda line: line.id)]

    def export(self, job: str | Job) -> bytes:
        """The file a completed ``data_export`` job wrote."""
        return self.transport.run(calls.export(job))

    def healthz(self) -> dict[str, Any]:
        """Liveness (no token needed): ``{"status": "ok"}`` while the server serves."""
        return self.transport.run(calls.healthz())

    def health(self) -> Health:
        """Readiness of every dependency (staff); ``health().ok`` is False when one fails."""
        return self.transport.run(calls.health())

    def metrics(self) -> dict[str, Any]:
        """Jobs by status and priority, queue depths, resources (staff)."""
        return self.transport.run(calls.metrics())

    def job_types(self) -> builtins.list[JobTypeInfo]:
        """Every job type the server accepts: payload schema, defaults, retry, pool."""
        return self.transport.run(calls.job_types())

    @overload
    def wait(  # type: ignore[overload-overlap]  # a str is one id, not many
        self,
        jobs: str | Job,
        *,
        timeout: float | None = ...,
        on_status: StatusCallback | None = ...,
    ) -> Job: ...
    @overload
    def wait(
        self,
        jobs: Iterable[str | Job],
        *,
        timeout: float | None = ...,
        on_status: StatusCallback | None = ...,
    ) -> builtins.list[Job]: ...

    def wait(
        self,
        jobs: str | Job | Iterable[str | Job],
        *,
        timeout: float | None = None,
        on_status: StatusCallback | None = None,
    ) -> Job | builtins.list[Job]:
        """Block until every job has ended; the final Job (or Jobs, in the order given).

        Follows the WebSocket feed, and polls over REST when no socket can be opened.
        ``on_status(job_id, status)`` hears each change seen. Raises ``Timeout`` (naming the
        jobs still running) after ``timeout`` seconds."""
        single = isinstance(jobs, (str, Job))
        given: builtins.list[str | Job] = [jobs] if isinstance(jobs, (str, Job)) else [*jobs]
        waiter = feed.Waiter([job_id_of(j) for j in given])
        deadline = _deadline(timeout)
        if not self._wait_socket(waiter, deadline, on_status):
            self._wait_poll(waiter, deadline, on_status)
        final = waiter.final()
        return final[0] if single else final

    def _wait_socket(
        self, waiter: feed.Waiter, deadline: float | None, on_status: StatusCallback | None
    ) -> bool:
        """Wait over sockets; False when none could be opened (the caller polls instead)."""
        opened = False
        while waiter.pending:
            try:
                with self._connect(feed.socket_url(self.settings.ws_url, None)) as ws:
                    self._await_subscribed(ws)
                    opened = True
                    self._follow(ws, waiter, deadline, on_status)
            except SOCKET_ERRORS:
                if not opened:
                    return False
                _check_deadline(waiter, deadline)
                time.sleep(feed.reconnect_delay(0))
        return True

    def _follow(
        self,
        ws: ClientConnection,
        waiter: feed.Waiter,
        deadline: float | None,
        on_status: StatusCallback | None,
    ) -> None:
        """Read the jobs once (they may have ended before the socket listened), then take
        each ending from the feed, reading the jobs again now and then."""
        self._read_pending(waiter, on_status)
        while waiter.pending:
            _check_deadline(waiter, deadline)
            try:
                message = feed.decode(ws.recv(timeout=_left(deadline, SAFETY_POLL_SECONDS)))
            except TimeoutError:
                self._read_pending(waiter, on_status)
                continue
            event = feed.FeedState().accept(message)
            if event is None or event.job_id not in waiter.pending:
                continue
            if on_status is not None:
                on_status(event.job_id, event.status)
            if event.status in ("completed", "failed", "cancelled"):
                waiter.record(self.get(event.job_id))

    def _read_pending(self, waiter: feed.Waiter, on_status: StatusCallback | None) -> None:
        for job_id in waiter.pending:
            job = self.get(job_id)
            if on_status is not None:
                on_status(job.id, job.status)
            waiter.record(job)

    def _wait_poll(
        self, waiter: feed.Waiter, deadline: float | None, on_status: StatusCallback | None
    ) -> None:
        pause = 0.2
        while True:
            self._read_pending(waiter, on_status)
            if not waiter.pending:
                return
            _check_deadline(waiter, deadline)
            time.sleep(_left(deadline, pause))
            pause = min(pause * 2, 2.0)

    def stream(
        self,
        *,
        job: str | Job | None = None,
        batch: str | None = None,
        since: int | None = None,
        reconnect_for: float = 60.0,
    ) -> Iterator[Event]:
        """The live events of your jobs (or one ``job``, one ``batch``), for ever.

        ``since``: replay the changes after that cursor first (0: all of them). A dropped
        socket is reopened and resumed by cursor: no event is lost or repeated. Raises
        ``ServerUnavailable`` after ``reconnect_for`` seconds without a socket."""
        state = feed.FeedState(
            job=job_id_of(job) if job is not None else None, batch=batch, since=since
        )
        down_since: float | None = None
        failures = 0
        while True:
            try:
                with self._connect(state.url(self.settings.ws_url, None)) as ws:
                    for frame in ws:
                        message = feed.decode(frame)
                        if message.get("type") == "subscribed":
                            down_since, failures = None, 0
                        event = state.accept(message)
                        if event is not None:
                            yield event
                        if state.must_reconnect:
                            state.must_reconnect = False
                            break
            except SOCKET_ERRORS as exc:
                down_since = down_since or time.monotonic()
                if time.monotonic() - down_since > reconnect_for:
                    raise self._unreachable(exc) from exc
            time.sleep(feed.reconnect_delay(failures))
            failures += 1

    def _connect(self, url: str) -> ClientConnection:
        sent = headers(self.settings)
        sent.pop("Accept")
        return connect(
            url,
            additional_headers=sent,
            user_agent_header=None,
            open_timeout=self.settings.timeout,
            close_timeout=2,
        )

    def _await_subscribed(self, ws: ClientConnection) -> None:
        """Read up to the server's ``subscribed``; raises the typed error it sent instead."""
        while True:
            message = feed.decode(ws.recv(timeout=self.settings.timeout))
            feed.FeedState().accept(message)  # raises on an error message
            if message.get("type") == "subscribed":
                return

    def _unreachable(self, exc: BaseException) -> ServerUnavailable:
        return ServerUnavailable(
            f"cannot keep a WebSocket open to {self.settings.ws_url} ({type(exc).__name__}: "
            f"{exc}); is the server running? Set DRACONIC_URL if it lives elsewhere",
            url=self.settings.ws_url,
        )


def _check_deadline(waiter: feed.Waiter, deadline: float | None) -> None:
    if deadline is not None and time.monotonic() >= deadline and waiter.pending:
        raise Timeout(f"still running after the timeout: {', '.join(waiter.pending)}")
