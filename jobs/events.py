"""Job events: published to the Channels layer after the transaction that made them commits.

Events are a live view, not the record: the ExecutionLog rows are. A client that missed an
event replays the log from its cursor (the ``log_id`` of the last event it saw). So a
broadcast that fails (Redis down, a full channel) is logged and dropped, never raised into the
code path that changed the job.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from asgiref.sync import async_to_sync
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
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(_send_all)(layer, changes)
    except Exception:  # a live view must never break the state change it reports
        logger.warning("could not broadcast %d job events", len(changes), exc_info=True)


async def _send_all(layer: Any, changes: Sequence[Change]) -> None:
    for change in changes:
        message = {
            "type": "job.update",
            "event": event_payload(change),
            "owner_id": change.owner_id,
        }
        await layer.group_send(owner_group(change.owner_id), message)
        await layer.group_send(STAFF_GROUP, message)
