"""Job events: published to the Channels layer after the transaction that made them commits.

Events are a live view, not the record: the ExecutionLog rows are. A client that missed an
event replays the log from its cursor (the ``log_id`` of the last event it saw). So a
broadcast that fails (Redis down, a full channel) is logged and dropped, never raised into the
code path that changed the job.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from jobs.models import Priority

if TYPE_CHECKING:
    from jobs.transitions import Change

logger = logging.getLogger("draconic.events")

STAFF_GROUP = "jobs.all"


def owner_group(owner_id: int) -> str:
    return f"jobs.owner.{owner_id}"


def event_payload(change: Change) -> dict[str, Any]:
    return {
        "type": "job_update",
        "job_id": str(change.job_id),
        "status": change.status,
        "previous_status": change.previous_status,
        "attempt": change.attempt,
        "priority": str(Priority(change.priority).label),
        "job_type": change.type,
        "batch_id": str(change.batch_id) if change.batch_id else None,
        "cursor": change.log_id,
        "timestamp": change.timestamp.isoformat(),
        **change.extra,
    }


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
        message = {"type": "job.update", "event": event_payload(change), "owner_id": change.owner_id}
        await layer.group_send(owner_group(change.owner_id), message)
        await layer.group_send(STAFF_GROUP, message)
