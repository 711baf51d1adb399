"""The life of one attempt, as its worker reports it: start, complete, fail (retry or
dead-letter). Each is one fenced state change; its side effects outside PostgreSQL (the lease
release, a dispatch, the events) run after the commit. Cancelling is in ``cancel``."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import redis
from django.db import transaction
from django.utils import timezone

from jobs.engine import admission, cancel, deadletter, ledger, transitions, wakeup
from jobs.engine.retry import RetryPolicy
from jobs.live import events
from jobs.models import DeadLetterReason, Job, JobStatus
from jobs.types.registry import handler_class


def job_start(*, job_id: UUID | str, attempt: int, worker: str) -> Job | None:
    """Move a queued job to running for this attempt. None for a stale or duplicate delivery
    (the job is not queued at this attempt any more): the caller must not run the handler."""
    # The lease keeps the queued job's "never expires" until the worker first renews it; if
    # the worker dies before that, the scheduler arms it (sweeps.arm_unrenewed_leases).
    return transitions.start_attempt(job_id=job_id, attempt=attempt, worker=worker)


def job_complete(*, job_id: UUID | str, attempt: int, result: Any) -> bool:
    """Record success and release the children for which this was the last parent."""
    # One round trip to PostgreSQL (autocommit when not in a transaction): the job's lock,
    # then the compare-and-swap, its log row and the children's counters; after it, the
    # event, the lease release and a dispatch request share one Redis round trip.
    completion = transitions.complete_attempt(job_id=job_id, attempt=attempt, result=result)
    if completion is None:
        return False
    # A child whose last parent this was is admitted by this process right away (no hop
    # through the scheduler), once the lease is released.
    here = completion.ready_children > 0
    lease = ledger.lease_id(job_id, attempt)

    def release(pipe: redis.client.Pipeline) -> None:
        ledger.release_in(pipe, [lease])
        if not here:
            wakeup.request_dispatch_in(pipe)  # capacity is free again

    events.publish_on_commit([completion.change], then=release)
    if here:
        transaction.on_commit(admission.dispatch_here)
    return True


def job_fail_attempt(
    *,
    job_id: UUID | str,
    attempt: int,
    error: str,
    traceback: str = "",
    permanent: bool = False,
    reason: DeadLetterReason | None = None,
) -> str | None:
    """Apply the retry policy to a failed running attempt: ``retrying`` with a backoff, or
    ``failed`` with a DeadLetter row. Returns the new status, or None if the attempt was
    already settled."""
    job = Job.objects.filter(id=job_id, attempt=attempt, status=JobStatus.RUNNING).first()
    if job is None:
        return None
    if job.cancel_requested:
        # Its owner cancelled it while it ran: it ends cancelled, not retried.
        ended = cancel.cancel_running_attempt(job_id=job_id, attempt=attempt)
        return JobStatus.CANCELLED if ended else None
    with transaction.atomic():
        status = _retry_or_dead_letter(job, error, traceback, permanent=permanent, reason=reason)
        if status is not None:
            cancel.release_after_commit(job_id, attempt)
    return status


def _retry_or_dead_letter(
    job: Job, error: str, traceback: str, *, permanent: bool, reason: DeadLetterReason | None
) -> str | None:
    """The retry policy's decision for the failed attempt, made: the new status, or None if
    the attempt was settled meanwhile."""
    attempt = job.attempt
    # The type's policy as this process knows it now (every process loads the same types).
    handler = handler_class(job.type)
    decision = RetryPolicy.of_type(handler.retry if handler else None).decide(
        attempt=attempt - job.attempt_offset, max_attempts=job.max_attempts, permanent=permanent
    )
    if decision is None:
        if reason is None:
            reason = DeadLetterReason.NON_RETRYABLE if permanent else DeadLetterReason.MAX_ATTEMPTS
        failed = deadletter.job_dead_letter(
            job_id=job.id, attempt=attempt, reason=reason, error=error, traceback=traceback
        )
        return JobStatus.FAILED if failed else None
    retrying = transitions.retry_attempt(
        job_id=job.id,
        attempt=attempt,
        error=error,
        next_attempt_at=timezone.now() + decision.delay,
        message=f"attempt {attempt} failed ({error[:200]}); retry in "
        f"{decision.delay.total_seconds():.1f}s",
        context={
            "reason": str(reason or "error"),
            "retry_in": decision.delay.total_seconds(),
            # The job page shows each attempt's error and traceback; only the last attempt's
            # go to its DeadLetter row, so a retried attempt's are kept here.
            "error": error[:2000],
            "traceback": traceback[-8000:],
        },
    )
    return JobStatus.RETRYING if retrying else None
