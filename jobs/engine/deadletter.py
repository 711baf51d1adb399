"""The dead-letter queue: in, when a job fails for good, and out, by re-drive only.

A job enters with a DeadLetter row written in the transaction that moves it to ``failed``,
which also cancels its pending descendants. Re-drive moves it back to ``pending`` with a fresh
budget of attempts and marks its DeadLetter row requeued.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from jobs.engine import cancel, transitions, wakeup
from jobs.live.events import Change
from jobs.models import DeadLetter, DeadLetterReason


def job_dead_letter(
    *,
    job_id: UUID | str,
    attempt: int,
    reason: DeadLetterReason,
    error: str,
    traceback: str = "",
) -> Change | None:
    """The running attempt ``attempt`` failed for good: ``failed`` plus its DeadLetter row."""
    with transaction.atomic():
        change = transitions.fail_attempt(
            job_id=job_id,
            attempt=attempt,
            error=error,
            message=f"failed for good ({reason}): {error[:300]}",
            context={"reason": str(reason)},
        )
        if change is not None:
            _enter(change, reason=reason, error=error, traceback=traceback)
    return change


def job_dead_letter_waiting(
    *, job_id: UUID | str, reason: DeadLetterReason, error: str
) -> Change | None:
    """A job that never ran can never be admitted: ``failed`` plus its DeadLetter row."""
    with transaction.atomic():
        change = transitions.fail_waiting(
            job_id=job_id,
            error=error,
            message=f"failed for good ({reason}): {error[:300]}",
            context={"reason": str(reason)},
        )
        if change is not None:
            _enter(change, reason=reason, error=error, traceback="")
    return change


def _enter(change: Change, *, reason: DeadLetterReason, error: str, traceback: str) -> None:
    DeadLetter.objects.create(
        job_id=change.job_id,
        reason=reason,
        error=error,
        traceback=traceback,
        attempts=change.attempt,
    )
    cancel.cancel_descendants(change.job_id, reason=f"parent {change.job_id} failed")


def dead_letter_requeue(*, job_id: UUID | str, by: Any = None) -> bool:
    """Re-drive a dead-lettered job; False if it is not in the DLQ."""
    return dead_letter_requeue_many(job_ids=[job_id], by=by) == 1


def dead_letter_requeue_many(*, job_ids: Sequence[UUID | str], by: Any = None) -> int:
    """Re-drive many dead-lettered jobs in one transaction (one statement for the jobs, one
    for their DeadLetter rows). Jobs not in the DLQ are skipped; returns how many moved."""
    with transaction.atomic():
        changes = transitions.redrive_jobs(job_ids=job_ids)
        if not changes:
            return 0
        DeadLetter.objects.filter(
            job_id__in=[c.job_id for c in changes], requeued_at__isnull=True
        ).update(requeued_at=timezone.now(), requeued_by=by if getattr(by, "pk", None) else None)
        transaction.on_commit(wakeup.request_dispatch)
    return len(changes)
