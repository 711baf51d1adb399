"""Attempts that their worker did not finish, and what becomes of them.

Two cases, told apart by whether the worker chose to stop:

- **Handed back** (``job_hand_back``): a worker in a warm shutdown whose grace period ran out
  gives its running attempts back. A shutdown is not a failure: the job returns to
  ``pending`` to be admitted again, the attempt is not charged against ``max_attempts`` and
  never sends the job to the dead-letter queue. The attempt number still grows at the next
  admission, so the interrupted attempt's late outcome is refused (fencing).
- **Lost** (``job_settle_lost``): the worker, or the pool process running the attempt, died
  (SIGKILL, out of memory, a crash). That is charged, as it always was: the retry policy
  decides between ``retrying`` and ``failed`` with reason ``worker_lost`` (or ``timeout`` if
  the attempt had run out of time). The scheduler finds such attempts when their lease
  expires; a worker that starts again under the same name settles its previous
  incarnation's at once (``worker_restarted``).

Every function here is idempotent, and leaves the attempt's lease free once the attempt is
settled, whoever settled it.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from uuid import UUID

import redis
from django.db import transaction
from django.utils import timezone

from jobs.engine import cancel, ledger, transitions
from jobs.engine.attempts import job_fail_attempt
from jobs.models import DeadLetterReason, Job, JobStatus

logger = logging.getLogger("draconic.engine")

#: Statuses in which a job holds the lease of its current attempt.
_LEASED = (JobStatus.QUEUED, JobStatus.RUNNING)


def job_hand_back(*, job_id: UUID | str, attempt: int, worker: str, why: str) -> str | None:
    """``worker`` gives back running attempt ``attempt``, unfinished and uncharged (see the
    module); ``worker`` is the name the attempt's start recorded (``Job.worker``).

    A job whose cancel was requested ends ``cancelled`` instead: its owner asked it to stop.
    Returns the job's new status, or None if the attempt was settled already (its lease is
    then freed if it was still held) or runs on another worker (nothing changes)."""
    with transaction.atomic():
        change = transitions.hand_back_attempt(
            job_id=job_id,
            attempt=attempt,
            worker=worker,
            message=f"attempt {attempt} handed back: {why} (not counted against max_attempts)",
            context={"reason": "handed_back", "why": why},
        )
        if change is not None:
            cancel.release_after_commit(job_id, attempt)
            return JobStatus.PENDING
    if Job.objects.filter(
        id=job_id,
        attempt=attempt,
        status=JobStatus.RUNNING,
        worker=worker[:255],
        cancel_requested=True,
    ).exists():
        return (
            JobStatus.CANCELLED
            if cancel.cancel_running_attempt(job_id=job_id, attempt=attempt)
            else None
        )
    release_if_settled(job_id=job_id, attempt=attempt)
    return None


def job_settle_lost(*, job_id: UUID | str, attempt: int, why: str) -> bool:
    """Settle running attempt ``attempt`` whose worker is gone (``why``: how we know), charged
    (see the module): cancelled if its cancel was requested, a timeout if it ran out of time,
    else ``worker_lost``. False if the attempt was settled already (its lease is then freed)."""
    job = Job.objects.filter(id=job_id, attempt=attempt, status=JobStatus.RUNNING).first()
    if job is None:
        release_if_settled(job_id=job_id, attempt=attempt)
        return False
    if job.cancel_requested:
        return cancel.cancel_running_attempt(job_id=job_id, attempt=attempt)
    timed_out = (
        job.started_at is not None
        and job.started_at + timedelta(seconds=job.timeout_seconds) <= timezone.now()
    )
    if timed_out:
        reason = DeadLetterReason.TIMEOUT
        error = f"attempt {attempt} exceeded its timeout of {job.timeout_seconds}s"
    else:
        reason = DeadLetterReason.WORKER_LOST
        error = f"attempt {attempt} lost its worker {job.worker or '(unknown)'}: {why}"
    return job_fail_attempt(job_id=job_id, attempt=attempt, error=error, reason=reason) is not None


def worker_restarted(*, worker: str) -> int:
    """A worker started under the name ``worker``: every attempt still ``running`` under that
    name belongs to an earlier process of that name, which is gone (a worker name names one
    process at a time, as Celery's node names do). Settle them as lost now rather than when
    their leases expire. Call it before the worker takes its first delivery. Returns how many
    it settled."""
    leftovers = list(
        Job.objects.filter(status=JobStatus.RUNNING, worker=worker).values_list("id", "attempt")
    )
    settled = 0
    for job_id, attempt in leftovers:
        why = "the worker was restarted"
        settled += int(job_settle_lost(job_id=job_id, attempt=attempt, why=why))
    if leftovers:
        logger.warning(
            "%s restarted: settled %d attempts its previous process left running",
            worker,
            settled,
            extra={"worker": worker, "settled": settled},
        )
    return settled


def release_if_settled(*, job_id: UUID | str, attempt: int) -> bool:
    """Free the lease of attempt ``attempt`` unless the job still holds it (queued or running
    at that attempt). Idempotent: a lease already freed is not freed twice (the ledger counts
    per lease). Once a job has left an attempt it never holds that attempt's lease again, so
    the check cannot go stale. Redis failing is logged: the reconcile frees it later."""
    if Job.objects.filter(id=job_id, attempt=attempt, status__in=_LEASED).exists():
        return False
    try:
        return ledger.ledger_release([ledger.lease_id(job_id, attempt)]) > 0
    except redis.RedisError as exc:
        logger.warning("could not free the lease of %s:%s now: %s", job_id, attempt, exc)
        return False
