"""The dead-letter queue: in, when a job fails for good, and out, by re-drive only.

A job enters with a DeadLetter row written in the transaction that moves it to ``failed``,
which also cancels its pending descendants. Re-drive moves it back to ``pending`` with a fresh
budget of attempts, marks its DeadLetter row requeued and (unless asked not to) brings back
the descendants its failure cancelled.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.utils import timezone

from jobs.engine import cancel, fingerprint, graph, prepared, statements, transitions, wakeup
from jobs.live.events import Change
from jobs.models import DeadLetter, DeadLetterReason, Job, JobStatus


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
            context={"reason": str(reason), "error": error, "traceback": traceback},
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
        fingerprint=fingerprint.fingerprint(change.type, error),
    )
    cancel.cancel_descendants(change.job_id, reason=f"parent {change.job_id} failed")


@dataclass(frozen=True)
class Redrive:
    requeued: list[UUID]
    """The jobs moved out of the DLQ, back to ``pending``."""
    revived: list[UUID]
    """Their descendants that their failure had cancelled, back to ``pending`` too."""


def dead_letter_requeue(*, job_id: UUID | str, by: Any = None) -> bool:
    """Re-drive a dead-lettered job and what its failure cancelled; False if it is not in
    the DLQ."""
    return bool(dead_letter_redrive(job_ids=[job_id], by=by).requeued)


def dead_letter_requeue_many(*, job_ids: Sequence[UUID | str], by: Any = None) -> int:
    """Re-drive many dead-lettered jobs and what their failure cancelled; how many left the
    DLQ."""
    return len(dead_letter_redrive(job_ids=job_ids, by=by).requeued)


def dead_letter_redrive(
    *, job_ids: Sequence[UUID | str], by: Any = None, descendants: bool = True
) -> Redrive:
    """Re-drive many dead-lettered jobs in one transaction: one statement for the jobs, one
    for their DeadLetter rows, and with ``descendants`` the pending descendants their failure
    cancelled come back too (as Airflow's "clear with downstream"). Jobs not in the DLQ are
    skipped."""
    with transaction.atomic():
        changes = transitions.redrive_jobs(job_ids=job_ids)
        if not changes:
            return Redrive(requeued=[], revived=[])
        requeued = [c.job_id for c in changes]
        DeadLetter.objects.filter(job_id__in=requeued, requeued_at__isnull=True).update(
            requeued_at=timezone.now(), requeued_by=by if getattr(by, "pk", None) else None
        )
        revived = _revive_descendants(requeued) if descendants else []
        transaction.on_commit(wakeup.request_dispatch)
    return Redrive(requeued=requeued, revived=revived)


#: A parent in one of these will complete, or did: a child waiting on it can come back.
_HOPEFUL = frozenset({"pending", "queued", "running", "retrying", "completed"})


def _revive_descendants(roots: Sequence[UUID]) -> list[UUID]:
    """Bring back the descendants of ``roots`` that an ancestor's failure cancelled and whose
    every parent will now complete (is live, completed, or comes back with them)."""
    candidates = graph.descendant_ids(*roots)
    if not candidates:
        return []
    revivable = set(
        Job.objects.filter(
            id__in=candidates, status=JobStatus.CANCELLED, cancel_requested=False
        ).values_list("id", flat=True)
    )
    if not revivable:
        return []
    parents: dict[UUID, list[tuple[UUID, str]]] = defaultdict(list)
    with connection.cursor() as cursor:
        ids = [str(i) for i in revivable]
        prepared.execute(cursor, (statements.PARENT_STATUSES, {"job_ids": ids}))
        for row in prepared.rows(cursor):
            parents[row["job_id"]].append((row["parent_id"], row["parent_status"]))
    back = set(roots)
    grew = True
    while grew:  # in graph order: a child comes back once all its parents can complete
        ready = {
            job
            for job in revivable - back
            if all(p in back or status in _HOPEFUL for p, status in parents[job])
        }
        back |= ready
        grew = bool(ready)
    reason = "revived: the ancestor whose failure cancelled it was re-driven"
    changes = transitions.revive_descendants(job_ids=sorted(back - set(roots)), reason=reason)
    return [c.job_id for c in changes]


def dead_letter_discard(*, letter_ids: Sequence[int], by: Any = None) -> list[UUID]:
    """Discard open dead letters: they leave the dead-letter queue's views (``GET
    /admin/dlq/``, its metrics, the console's groups); their jobs stay ``failed`` (nothing
    else changes) and may still be re-driven by id, which closes the letter. Letters already
    re-driven or discarded are skipped. Returns the discarded letters' job ids."""
    with transaction.atomic():
        letters = (
            DeadLetter.objects.select_for_update()
            .filter(id__in=letter_ids, requeued_at__isnull=True, discarded_at__isnull=True)
            .order_by("id")
        )
        rows = list(letters.values_list("id", "job_id"))
        DeadLetter.objects.filter(id__in=[i for i, _ in rows]).update(
            discarded_at=timezone.now(), discarded_by=by if getattr(by, "pk", None) else None
        )
    return [job_id for _, job_id in rows]
