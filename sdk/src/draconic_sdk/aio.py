"""``AsyncClient``: the asyncio twin of ``Client``, the same calls (``calls``) sent through
``httpx.AsyncClient`` and the same feed logic (``feed``) over asyncio WebSockets.

    async with AsyncClient() as client:
        job = await client.submit("noop")
        job = await client.wait(job, timeout=60)
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping
from datetime import datetime
from typing import Any, overload

import httpx
from websockets.asyncio.client import ClientConnection, connect

from draconic_sdk import calls, feed
from draconic_sdk.aio_rules import AsyncLimits, AsyncSchedules
from draconic_sdk.calls import Page, job_id_of
from draconic_sdk.client import (
    SAFETY_POLL_SECONDS,
    SOCKET_ERRORS,
    StatusCallback,
    _check_deadline,
    _deadline,
    _left,
)
from draconic_sdk.config import Settings, settings
from draconic_sdk.errors import ServerUnavailable
from draconic_sdk.graph import Graph, JobOptions
from draconic_sdk.models import (
    BatchResult,
    BulkRequeued,
    DeadLetter,
    Event,
    Health,
    Job,
    JobTypeInfo,
    LogEntry,
    Requeued,
)
from draconic_sdk.namespaces import apages
from draconic_sdk.pauses import AsyncPauses
from draconic_sdk.transport import AsyncTransport, headers


class AsyncDependencies:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def add(self, job: str | Job, parents: Iterable[str | Job]) -> Job:
        return await self._client.transport.run(calls.add_dependencies(job, parents))


class AsyncDeadLetters:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    def list(
        self, *, type: str | None = None, reason: str | None = None, page_size: int = 100
    ) -> AsyncIterator[DeadLetter]:
        run = self._client.transport.run

        def fetch(page: int) -> Awaitable[Page[DeadLetter]]:
            return run(calls.dlq_page(page=page, page_size=page_size, type=type, reason=reason))

        return apages(fetch, key=lambda d: d.id)

    async def retry(self, job: str | Job, *, descendants: bool = True) -> Requeued:
        return await self._client.transport.run(calls.dlq_retry(job, descendants=descendants))

    async def retry_all(
        self,
        *,
        type: str | None = None,
        reason: str | None = None,
        all: bool = False,
        dry_run: bool = False,
        descendants: bool = True,
    ) -> BulkRequeued:
        call = calls.dlq_retry_bulk(
            type=type, reason=reason, all=all, dry_run=dry_run, descendants=descendants
        )
        return await self._client.transport.run(call)


class AsyncClient:
    """The asyncio Draconic client; arguments as ``Client``'s. Use ``async with``."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        max_retry_wait: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings: Settings = settings(
            url, token, timeout=timeout, retries=retries, max_retry_wait=max_retry_wait
        )
        self.transport = AsyncTransport(self.settings, transport)
        self.dependencies = AsyncDependencies(self)
        self.dlq = AsyncDeadLetters(self)
        self.schedules = AsyncSchedules(self)
        self.limits = AsyncLimits(self)
        self.pauses = AsyncPauses(self)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def submit(
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
        return await self.transport.run(call)

    async def submit_graph(self, graph: Graph) -> BatchResult:
        return await self.transport.run(calls.submit_graph(graph))

    async def get(self, job: str | Job) -> Job:
        return await self.transport.run(calls.get(job))

    def list(
        self,
        *,
        status: str | None = None,
        type: str | None = None,
        priority: str | None = None,
        scheduled: bool | None = None,
        limit: int | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[Job]:
        def fetch(page: int) -> Awaitable[Page[Job]]:
            call = calls.jobs_page(
                page=page,
                page_size=page_size,
                status=status,
                type=type,
                priority=priority,
                scheduled=scheduled,
            )
            return self.transport.run(call)

        return apages(fetch, key=lambda j: j.id, limit=limit)

    async def cancel(self, job: str | Job) -> Job:
        return await self.transport.run(calls.cancel(job))

    async def logs(self, job: str | Job, *, since: int | None = None) -> builtins.list[LogEntry]:
        def fetch(page: int) -> Awaitable[Page[LogEntry]]:
            return self.transport.run(calls.logs_page(job, since=since, page=page))

        return [line async for line in apages(fetch, key=lambda line: line.id)]

    async def export(self, job: str | Job) -> bytes:
        return await self.transport.run(calls.export(job))

    async def healthz(self) -> dict[str, Any]:
        return await self.transport.run(calls.healthz())

    async def health(self) -> Health:
        return await self.transport.run(calls.health())

    async def metrics(self) -> dict[str, Any]:
        return await self.transport.run(calls.metrics())

    async def job_types(self) -> builtins.list[JobTypeInfo]:
        return await self.transport.run(calls.job_types())

    @overload
    async def wait(  # type: ignore[overload-overlap]  # a str is one id, not many
        self,
        jobs: str | Job,
        *,
        timeout: float | None = ...,
        on_status: StatusCallback | None = ...,
    ) -> Job: ...
    @overload
    async def wait(
        self,
        jobs: Iterable[str | Job],
        *,
        timeout: float | None = ...,
        on_status: StatusCallback | None = ...,
    ) -> builtins.list[Job]: ...

    async def wait(
        self,
        jobs: str | Job | Iterable[str | Job],
        *,
        timeout: float | None = None,
        on_status: StatusCallback | None = None,
    ) -> Job | builtins.list[Job]:
        """As ``Client.wait``: the final Job(s), over the feed, polling without a socket."""
        single = isinstance(jobs, (str, Job))
        given: builtins.list[str | Job] = [jobs] if isinstance(jobs, (str, Job)) else [*jobs]
        waiter = feed.Waiter([job_id_of(j) for j in given])
        deadline = _deadline(timeout)
        if not await self._wait_socket(waiter, deadline, on_status):
            await self._wait_poll(waiter, deadline, on_status)
        final = waiter.final()
        return final[0] if single else final

    async def _wait_socket(
        self, waiter: feed.Waiter, deadline: float | None, on_status: StatusCallback | None
    ) -> bool:
        opened = False
        while waiter.pending:
            try:
                async with self._connect(feed.socket_url(self.settings.ws_url, None)) as ws:
                    await self._await_subscribed(ws)
                    opened = True
                    await self._follow(ws, waiter, deadline, on_status)
            except SOCKET_ERRORS:
                if not opened:
                    return False
                _check_deadline(waiter, deadline)
                await asyncio.sleep(feed.reconnect_delay(0))
        return True

    async def _follow(
        self,
        ws: ClientConnection,
        waiter: feed.Waiter,
        deadline: float | None,
        on_status: StatusCallback | None,
    ) -> None:
        await self._read_pending(waiter, on_status)
        while waiter.pending:
            _check_deadline(waiter, deadline)
            try:
                frame = await asyncio.wait_for(ws.recv(), _left(deadline, SAFETY_POLL_SECONDS))
            except TimeoutError:
                await self._read_pending(waiter, on_status)
                continue
            event = feed.FeedState().accept(feed.decode(frame))
            if event is None or event.job_id not in waiter.pending:
                continue
            if on_status is not None:
                on_status(event.job_id, event.status)
            if event.status in ("completed", "failed", "cancelled"):
                waiter.record(await self.get(event.job_id))

    async def _read_pending(self, waiter: feed.Waiter, on_status: StatusCallback | None) -> None:
        for job_id in waiter.pending:
            job = await self.get(job_id)
            if on_status is not None:
                on_status(job.id, job.status)
            waiter.record(job)

    async def _wait_poll(
        self, waiter: feed.Waiter, deadline: float | None, on_status: StatusCallback | None
    ) -> None:
        pause = 0.2
        while True:
            await self._read_pending(waiter, on_status)
            if not waiter.pending:
                return
            _check_deadline(waiter, deadline)
            await asyncio.sleep(_left(deadline, pause))
            pause = min(pause * 2, 2.0)

    async def stream(
        self,
        *,
        job: str | Job | None = None,
        batch: str | None = None,
        since: int | None = None,
        reconnect_for: float = 60.0,
    ) -> AsyncIterator[Event]:
        """As ``Client.stream``: resumes by cursor after a drop, nothing lost or repeated."""
        state = feed.FeedState(
            job=job_id_of(job) if job is not None else None, batch=batch, since=since
        )
        down_since: float | None = None
        failures = 0
        while True:
            try:
                async with self._connect(state.url(self.settings.ws_url, None)) as ws:
                    async for frame in ws:
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
                    raise ServerUnavailable(
                        f"cannot keep a WebSocket open to {self.settings.ws_url} ({exc})",
                        url=self.settings.ws_url,
                    ) from exc
            await asyncio.sleep(feed.reconnect_delay(failures))
            failures += 1

    def _connect(self, url: str) -> connect:
        sent = headers(self.settings)
        sent.pop("Accept")
        return connect(
            url,
            additional_headers=sent,
            user_agent_header=None,
            open_timeout=self.settings.timeout,
            close_timeout=2,
        )

    async def _await_subscribed(self, ws: ClientConnection) -> None:
        while True:
            frame = await asyncio.wait_for(ws.recv(), self.settings.timeout)
            message = feed.decode(frame)
            feed.FeedState().accept(message)  # raises on an error message
            if message.get("type") == "subscribed":
                return
