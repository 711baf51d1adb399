"""What happens to a job once admitted: start, complete, fail (retry or dead-letter), cancel,
re-drive. Each function is one atomic state change through ``transitions``; its side effects
outside PostgreSQL (ledger release, dispatch, events) run after the commit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import redis
from django.db import connection, transaction
from django.utils import timezone

from jobs import dispatcher, events, ledger
from jobs.models import DeadLetter, DeadLetterReason, Job, JobDependency, JobStatus, LogLevel
from jobs.retry import RetryPolicy
from jobs.transitions import NOW, SQL, Change, transition, transition_many


def job_start(*, job_id: UUID | str, attempt: int, worker: str) -> Job | None:
    """Move a queued job to running for this attempt. None for a stale or duplicate delivery
    (the job is not queued at this attempt any more): the caller must not run the handler."""
    change = transition(
        job_id,
        from_=JobStatus.QUEUED,
        to=JobStatus.RUNNING,
        attempt=attempt,
        message=f"attempt {attempt} started on {worker}",
        fields={"started_at": NOW, "worker": worker[:255]},
        context={"worker": worker},
        with_job=True,
    )
    if change is None or change.job is None:
        return None
    # The lease keeps the queued job's "never expires" until the worker's heartbeat first
    # renews it; if the worker dies before that, the scheduler arms it (arm_unrenewed_leases).
    return change.job


def job_complete(*, job_id: UUID | str, attempt: int, result: Any) -> bool:
    """Record success and release the children for which this was the last parent."""
    # One round trip to PostgreSQL (autocommit when not in a transaction): the job's lock,
    # then the compare-and-swap, its log row and the children's counters; after it, the
    # event, the lease release and a dispatch request share one Redis round trip.
    change = transition(
        job_id,
        from_=JobStatus.RUNNING,
        to=JobStatus.COMPLETED,
        attempt=attempt,
        message=f"attempt {attempt} completed",
        fields={"result": result, "completed_at": NOW, "error": ""},
        release_children=True,
        announce=False,
    )
    if change is None:
        return False
    # A child whose last parent this was is admitted by this process right away (no hop
    # through the scheduler), once the lease is released.
    here = change.released > 0
    lease = ledger.lease_id(job_id, attempt)
    events.publish_on_commit(
        [change], then=lambda pipe: _release_in(pipe, lease, request_dispatch=not here)
    )
    if here:
        transaction.on_commit(dispatcher.dispatch_here)
    return True


def _release_in(pipe: redis.client.Pipeline, lease: str, *, request_dispatch: bool) -> None:
    """Queue the Redis commands after an attempt ends: free its lease and, unless this
    process dispatches itself, ask the scheduler for a dispatch (capacity is free again)."""
    ledger.release_in(pipe, [lease])
    if request_dispatch:
        dispatcher.request_dispatch_in(pipe)


def job_fail_attempt(
    *,
    job_id: UUID | str,
    attempt: int,
    error: str,
    traceback: str = "",
    permanent: bool = False,
    reason: DeadLetterReason | None = None,
    from_: Sequence[JobStatus] = (JobStatus.RUNNING,),
) -> str | None:
    """Apply the retry policy to a failed attempt: ``retrying`` with a backoff, or ``failed``
    with a DeadLetter row. Returns the new status, or None if the attempt was already settled."""
    job = Job.objects.filter(id=job_id, attempt=attempt, status__in=from_).first()
    if job is None:
        return None
    if job.cancel_requested and JobStatus.RUNNING in from_:
        # Its owner cancelled it while it ran: it ends cancelled, not retried.
        return JobStatus.CANCELLED if job_cancel_running(job_id=job_id, attempt=attempt) else None
    used = job.attempt - job.attempt_offset
    decision = RetryPolicy.from_settings().decide(
        attempt=used, max_attempts=job.max_attempts, permanent=permanent
    )
    with transaction.atomic():
        if decision is not None:
            change = transition(
                job_id,
                from_=from_,
                to=JobStatus.RETRYING,
                attempt=attempt,
                level=LogLevel.WARNING,
                message=f"attempt {attempt} failed ({error[:200]}); retry in "
                f"{decision.delay.total_seconds():.1f}s",
                fields={"error": error, "next_attempt_at": timezone.now() + decision.delay},
                context={
                    "reason": str(reason or "error"),
                    "retry_in": decision.delay.total_seconds(),
                },
            )
            status = JobStatus.RETRYING
        else:
            if reason is None:
                reason = (
                    DeadLetterReason.NON_RETRYABLE if permanent else DeadLetterReason.MAX_ATTEMPTS
                )
            change = job_dead_letter(
                job_id=job_id,
                attempt=attempt,
                from_=from_,
                reason=reason,
                error=error,
                traceback=traceback,
            )
            status = JobStatus.FAILED
        if change is None:
            return None
        _after_commit_release(job_id, attempt)
    return status


def job_dead_letter(
    *,
    job_id: UUID | str,
    attempt: int | None,
    from_: Sequence[JobStatus],
    reason: DeadLetterReason,
    error: str,
    traceback: str = "",
) -> Change | None:
    """Move a job to ``failed``, write its DeadLetter row and cancel its pending descendants,
    all in one transaction."""
    with transaction.atomic():
        change = transition(
            job_id,
            from_=from_,
            to=JobStatus.FAILED,
            attempt=attempt,
            level=LogLevel.ERROR,
            message=f"failed for good ({reason}): {error[:300]}",
            fields={"error": error, "completed_at": NOW, "next_attempt_at": None},
            context={"reason": str(reason)},
        )
        if change is None:
            return None
        DeadLetter.objects.create(
            job_id=job_id,
            reason=reason,
            error=error,
            traceback=traceback,
            attempts=change.attempt,
        )
        cancel_descendants(job_id, reason=f"parent {job_id} failed")
    return change


def job_cancel_running(*, job_id: UUID | str, attempt: int) -> bool:
    """A running handler stopped because its job was cancelled: end it ``cancelled``."""
    with transaction.atomic():
        change = transition(
            job_id,
            from_=JobStatus.RUNNING,
            to=JobStatus.CANCELLED,
            attempt=attempt,
            message=f"attempt {attempt} stopped: cancelled",
            fields={"completed_at": NOW},
        )
        if change is None:
            return False
        cancel_descendants(job_id, reason=f"parent {job_id} was cancelled")
        _after_commit_release(job_id, attempt)
    return True


def descendant_ids(job_id: UUID | str) -> set[UUID]:
    table = JobDependency._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH RECURSIVE d(id) AS (SELECT job_id FROM {table} WHERE depends_on_id = %s "
            f"UNION SELECT e.job_id FROM {table} e JOIN d ON e.depends_on_id = d.id) "
            "SELECT id FROM d",
            [str(job_id)],
        )
        return {row[0] for row in cursor.fetchall()}


def cancel_descendants(job_id: UUID | str, *, reason: str) -> int:
    """Cancel every pending descendant of a job that will never complete."""
    ids = list(descendant_ids(job_id))
    changes = transition_many(
        ids,
        from_=JobStatus.PENDING,
        to=JobStatus.CANCELLED,
        level=LogLevel.WARNING,
        message=reason,
        fields={"completed_at": NOW, "error": reason},
    )
    return len(changes)


def dead_letter_requeue(*, job_id: UUID | str, by: Any = None) -> bool:
    """Re-drive a dead-lettered job: back to ``pending`` with a fresh budget of attempts,
    keeping its priority, resources and payload. Returns False if it is not in the DLQ."""
    return dead_letter_requeue_many(job_ids=[job_id], by=by) == 1


def dead_letter_requeue_many(*, job_ids: Sequence[UUID | str], by: Any = None) -> int:
    """Re-drive many dead-lettered jobs in one transaction (one statement for the jobs, one
    for their DeadLetter rows). Jobs not in the DLQ are skipped; returns how many moved."""
    with transaction.atomic():
        changes = transition_many(
            job_ids,
            from_=JobStatus.FAILED,
            to=JobStatus.PENDING,
            message="re-driven from the dead-letter queue",
            fields={
                "attempt_offset": SQL("attempt"),
                "next_attempt_at": None,
                "completed_at": None,
                "started_at": None,
                "error": "",
                "result": None,
                "cancel_requested": False,
            },
        )
        if not changes:
            return 0
        DeadLetter.objects.filter(
            job_id__in=[c.job_id for c in changes], requeued_at__isnull=True
        ).update(requeued_at=timezone.now(), requeued_by=by if getattr(by, "pk", None) else None)
        transaction.on_commit(dispatcher.request_dispatch)
    return len(changes)


def _after_commit_release(job_id: UUID | str, attempt: int) -> None:
    """After the commit: free the attempt's lease and ask for a dispatch (one round trip)."""
    lease = ledger.lease_id(job_id, attempt)
    transaction.on_commit(
        lambda: ledger.ledger_release([lease], then=dispatcher.request_dispatch_in)
    )
