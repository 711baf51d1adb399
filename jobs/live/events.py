"""Job events: published to the Channels layer after the transaction that made them commits.

Events are a live view, not the record: the ExecutionLog rows are. A client that missed an
event replays the log from its cursor (the ``log_id`` of the last event it saw; what that
replays, exactly, is ``jobs.live.resume``'s to say). So a
broadcast that fails (Redis down, a full channel) is logged and dropped, never raised into the
code path that changed the job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import redis
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.db.models import Q

from jobs.live import resume
from jobs.models import ExecutionLog, Priority
from jobs.redis_client import get_redis

logger = logging.getLogger("draconic.events")

STAFF_GROUP = "jobs.all"


@dataclass(frozen=True)
class Change:
    """One job's state change as the engine made it (``jobs.engine.transitions``) and as
    it is published to listeners."""

    job_id: UUID
    owner_id: int
    type: str
    priority: int
    status: str
    previous_status: str
    attempt: int
    batch_id: UUID | None
    log_id: int
    timestamp: datetime


def owner_group(owner_id: int) -> str:
    return f"jobs.owner.{owner_id}"


def event_payload(change: Change) -> dict[str, Any]:
    """The JSON a WebSocket client receives for one state change (see ``jobs.live.consumers``)."""
    return _event(
        job_id=change.job_id,
        status=change.status,
        previous_status=change.previous_status,
        attempt=change.attempt,
        priority=change.priority,
        job_type=change.type,
        batch_id=change.batch_id,
        cursor=change.log_id,
        timestamp=change.timestamp,
    )


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
    """The events of the state changes a client that saw cursor ``since`` may have missed
    (``resume.missed_since``: the later ones, and those of transactions still open when it was
    written), in log id order, at most ``limit`` of them: the ExecutionLog rows with a
    ``to_status``, shaped like live events plus ``"replay": true``. ``owner_id`` None means
    every owner's jobs (staff); empty ``job_ids`` and ``batch_ids`` mean all the jobs of that
    scope, otherwise the jobs of either set."""
    rows = ExecutionLog.objects.filter(resume.missed_since(since)).exclude(to_status="")
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


def publish_on_commit(
    changes: Sequence[Change], *, then: Callable[[redis.client.Pipeline], None] | None = None
) -> None:
    """Log each change now and broadcast them all once the current transaction commits.

    ``then`` may queue more commands (a dispatch request) on the broadcast's pipeline: one
    Redis round trip after the commit for both."""
    log_changes(changes)
    if changes or then is not None:
        batch = list(changes)
        transaction.on_commit(lambda: broadcast(batch, then=then))


def log_changes(changes: Sequence[Change]) -> None:
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


def broadcast(
    changes: Sequence[Change], *, then: Callable[[redis.client.Pipeline], None] | None = None
) -> None:
    """Send the events now, in one Redis round trip (with ``then``'s commands, if any). A
    failure is logged, not raised: the events are in the ExecutionLog for ``since`` replay."""
    pipe = get_redis().pipeline(transaction=False)
    publish_in(pipe, changes)
    if then is not None:
        then(pipe)
    try:
        pipe.execute()
    except redis.RedisError as exc:
        # Events are replayable; a lease left held is freed by the scheduler's reconcile.
        logger.warning(
            "could not send %d job events (and the commands queued with them): %r",
            len(changes),
            exc,
        )


def publish_in(pipe: redis.client.Pipeline, changes: Sequence[Change]) -> None:
    """Queue the events of ``changes`` on a pipeline that another call executes: one
    ``PUBLISH`` per group (the owners' and the staff one), each carrying a list of events.

    The channel layer is channels-redis's pub/sub layer on the same Redis (``REDIS_URL``), so
    a publish here reaches every socket that joined the group through the layer, in every
    server process, and costs Redis nothing when nobody listens. The message is encoded by
    the layer's own serializer, sent to the channel name the layer subscribes a group to."""
    if not changes:
        return
    layer = get_channel_layer()
    if layer is None:
        return
    for group, message in _messages([(c.owner_id, event_payload(c)) for c in changes]):
        pipe.publish(group_channel(group), layer.serialize(message))


def group_channel(group: str) -> str:
    """The Redis pub/sub channel of a layer group (``RedisPubSubLoopLayer`` names it so)."""
    prefix = settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("prefix", "asgi")
    return f"{prefix}__group__{group}"


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
