"""Job events: published to the Channels layer after the transaction that made them commits.

Events are a live view, not the record: the ExecutionLog rows are. A client that missed an
event replays the log from its cursor (the ``log_id`` of the last event it saw). So a
broadcast that fails (Redis down, a full channel) is logged and dropped, never raised into the
code path that changed the job.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models import Q

from jobs.models import ExecutionLog, Priority

if TYPE_CHECKING:
    from jobs.transitions import Change

logger = logging.getLogger("draconic.events")

STAFF_GROUP = "jobs.all"


def owner_group(owner_id: int) -> str:
    return f"jobs.owner.{owner_id}"


def event_payload(change: Change) -> dict[str, Any]:
    """The JSON a WebSocket client receives for one state change (see ``jobs.consumers``)."""
    return {
        **_event(
            job_id=change.job_id,
            status=change.status,
            previous_status=change.previous_status,
            attempt=change.attempt,
            priority=change.priority,
            job_type=change.type,
            batch_id=change.batch_id,
            cursor=change.log_id,
            timestamp=change.timestamp,
        ),
        **change.extra,
    }


def _event(
    *,
    job_id: UUID,
    status: str,
    previous_status: str,
    attempt: int,
    priority: int,
    job_type: str,
    batch_id: UUID | None,
    cursor: int,
    timestamp: datetime,
) -> dict[str, Any]:
    return {
        "type": "job_update",
        "job_id": str(job_id),
        "status": status,
        "previous_status": previous_status,
        "attempt": attempt,
        "priority": str(Priority(priority).label),
        "job_type": job_type,
        "batch_id": str(batch_id) if batch_id else None,
        "cursor": cursor,
        "timestamp": timestamp.isoformat(),
    }


def replay(
    *,
    since: int,
    owner_id: int | None,
    job_ids: Collection[UUID] = (),
    batch_ids: Collection[UUID] = (),
    limit: int,
) -> list[dict[str, Any]]:
    """The events of the state changes logged after cursor ``since``, oldest first, at most
    ``limit`` of them: the ExecutionLog rows with a ``to_status``, shaped like live events plus
    ``"replay": true``. ``owner_id`` None means every owner's jobs (staff); empty ``job_ids``
    and ``batch_ids`` mean all the jobs of that scope, otherwise the jobs of either set."""
    rows = ExecutionLog.objects.filter(id__gt=since).exclude(to_status="")
    if owner_id is not None:
        rows = rows.filter(job__owner_id=owner_id)
    if job_ids or batch_ids:
        rows = rows.filter(Q(job_id__in=list(job_ids)) | Q(job__batch_id__in=list(batch_ids)))
    values = rows.order_by("id").values_list(
        "id",
        "job_id",
        "to_status",
        "from_status",
        "attempt",
        "created_at",
        "job__priority",
        "job__type",
        "job__batch_id",
    )[:limit]
    return [
        {
            **_event(
                job_id=job_id,
                status=to,
                previous_status=from_,
                attempt=attempt,
                priority=priority,
                job_type=job_type,
                batch_id=batch_id,
                cursor=log_id,
                timestamp=created,
            ),
            "replay": True,
        }
        for log_id, job_id, to, from_, attempt, created, priority, job_type, batch_id in values
    ]


def publish_on_commit(changes: Sequence[Change]) -> None:
    """Log each change now and broadcast them all once the current transaction commits."""
    for change in changes:
        logger.info(
            "job %s %s -> %s",
            change.job_id,
            change.previous_status or "new",
            change.status,
            extra={
                "job_id": str(change.job_id),
                "attempt": change.attempt,
                "transition": f"{change.previous_status or 'new'}->{change.status}",
            },
        )
    if changes:
        batch = list(changes)
        transaction.on_commit(lambda: broadcast(batch))


def broadcast(changes: Sequence[Change]) -> None:
    """Hand the events to this process's publisher; returns at once."""
    _publisher.submit([(change.owner_id, event_payload(change)) for change in changes])


def flush(timeout: float = 5.0) -> bool:
    """Wait until every event handed to the publisher was sent (tests, shutdown)."""
    return _publisher.flush(timeout)


def _messages(events: list[tuple[int, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """One layer message per owner group and one for staff, each carrying its events."""
    by_owner: dict[int, list[dict[str, Any]]] = {}
    for owner, event in events:
        by_owner.setdefault(owner, []).append(event)
    messages = [
        (owner_group(owner), {"type": "job.updates", "owner_id": owner, "events": evs})
        for owner, evs in by_owner.items()
    ]
    everything = [event for _, event in events]
    messages.append((STAFF_GROUP, {"type": "job.updates", "owner_id": None, "events": everything}))
    return messages


class _Publisher:
    """A background event loop per process that sends events to the channel layer.

    Callers only append to a buffer (``async_to_sync`` would start an event loop, and a Redis
    connection, per commit, and make the worker wait for Redis). The loop drains the buffer
    in one go: every event that piled up while it was sending travels in one message per
    group, so a busy worker or a 1,000-job batch costs a few ``group_send`` calls, not
    thousands. Past ``MAX_BUFFERED`` events (Redis down or too slow) new events are dropped
    with a warning; clients resume from the ExecutionLog with ``since``.
    """

    MAX_BUFFERED = 100_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pid = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._buffer: list[tuple[int, dict[str, Any]]] = []
        self._draining = False

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        # A forked worker child inherits the object but not the thread: start its own.
        if self._pid != os.getpid() or self._loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="draconic-events", daemon=True).start()
            self._loop, self._pid, self._buffer, self._draining = loop, os.getpid(), [], False
        return self._loop

    def submit(self, events: list[tuple[int, dict[str, Any]]]) -> None:
        with self._lock:
            loop = self._running_loop()
            if len(self._buffer) + len(events) > self.MAX_BUFFERED:
                logger.warning("event buffer full; dropping %d events", len(events))
                return
            self._buffer.extend(events)
            if self._draining:
                return  # the running drain will take these too
            self._draining = True
        asyncio.run_coroutine_threadsafe(self._drain(), loop)

    async def _drain(self) -> None:
        while True:
            with self._lock:
                events, self._buffer = self._buffer, []
                if not events:
                    self._draining = False
                    self._idle.notify_all()
                    return
            try:
                layer = get_channel_layer()
                for group, message in _messages(events) if layer is not None else []:
                    await layer.group_send(group, message)
            except Exception as exc:  # a live view must never break a state change
                logger.warning("could not broadcast %d job events: %r", len(events), exc)

    def flush(self, timeout: float) -> bool:
        with self._lock:
            return self._idle.wait_for(lambda: not self._draining, timeout=timeout)


_publisher = _Publisher()
