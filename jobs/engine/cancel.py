"""Cancelling: every way a job ends ``cancelled``.

- Its owner (or an operator) cancels it: a waiting job (pending, queued, retrying) ends at
  once, and a queued job's lease is released; a running one is asked to stop: the request is
  written in its log, flagged on the row, and published to its worker at once (the worker
  also polls a notice left in Redis, ``cancel_notice_key``, in case the message is lost).
- A running attempt stops because of that request, or the scheduler terminates it after
  ``DRACONIC_CANCEL_GRACE_SECONDS``: ``cancel_running_attempt``.
- A job that will never complete (failed or cancelled) takes its pending descendants with it.
"""

from __future__ import annotations

import functools
import logging
from uuid import UUID

import redis
from django.conf import settings
from django.db import connection, transaction

from jobs.engine import graph, ledger, prepared, statements, transitions, wakeup
from jobs.errors import JobConflict
from jobs.models import Job, JobStatus
from jobs.redis_client import get_redis, key

logger = logging.getLogger("draconic.dispatcher")

logger = logging.getLogger("draconic.engine")

#: How often ``job_cancel`` looks again at a job that changed state under it.
CANCEL_TRIES = 5


def job_cancel(*, job: Job, reason: str = "cancelled by its owner") -> Job:
    """Cancel a job and return it fresh. A terminal job raises JobConflict."""
    for _ in range(CANCEL_TRIES):
        current = Job.objects.get(id=job.id)
        if current.status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED):
            raise JobConflict(f"job {job.id} is already {current.status} and cannot be cancelled")
        if current.status == JobStatus.RUNNING:
            done = _request_cancel(job.id, reason)
        else:
            done = _cancel_waiting(current, reason)
        if done:
            return Job.objects.get(id=job.id)
        # It changed state under us (admitted, started, ended...): look again.
    raise JobConflict(f"job {job.id} kept changing state; try again")


def _request_cancel(job_id: UUID, reason: str) -> bool:
    """Flag a running job for its handler and tell its worker at once; False if it is not
    running any more."""
    parameters = {"job_id": str(job_id), "message": f"cancel requested: {reason}"}
    with connection.cursor() as cursor:
        prepared.execute(cursor, (statements.REQUEST_CANCEL, parameters))
        flagged = prepared.rows(cursor)
    for row in flagged:
        lease = ledger.lease_id(row["job_id"], row["attempt"])
        transaction.on_commit(functools.partial(_tell_worker, lease))
    return bool(flagged)


def cancel_channel() -> str:
    """The Redis pub/sub channel on which cancel requests of running attempts go out (their
    lease ids); every worker process listens (``workers.lease_keeper``)."""
    return key("cancel")


def cancel_notice_key(lease: str) -> str:
    """The Redis key that stays set while a cancel of ``lease`` waits for its worker: what
    the worker's poll reads when it missed the message (its listener was reconnecting). The
    poll reads Redis, not PostgreSQL, so a worker process needs one database connection."""
    return key("cancel", lease)


def _tell_worker(lease: str) -> None:
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.set(cancel_notice_key(lease), 1, ex=_notice_ttl())
        pipe.publish(cancel_channel(), lease)
        pipe.execute()
    except redis.RedisError:
        logger.warning(
            "could not tell the worker of %s to stop; the scheduler terminates it after the "
            "cancel grace",
            lease,
        )


def _notice_ttl() -> int:
    """Long enough for any attempt still running to see it: past the grace after which the
    scheduler terminates the attempt anyway, and past a lease."""
    grace = settings.DRACONIC_CANCEL_GRACE_SECONDS + settings.DRACONIC_LEASE_SECONDS
    return max(60, int(grace * 2))


def _cancel_waiting(job: Job, reason: str) -> bool:
    with transaction.atomic():
        change = transitions.cancel_waiting(job_id=job.id, attempt=job.attempt, message=reason)
        if change is None:
            return False
        cancel_descendants(job.id, reason=f"parent {job.id} was cancelled")
        if change.previous_status == JobStatus.QUEUED:
            lease = ledger.lease_id(job.id, job.attempt)
            transaction.on_commit(functools.partial(_release_and_dispatch, lease))
    return True


def cancel_running_attempt(*, job_id: UUID | str, attempt: int) -> bool:
    """A running attempt stopped because its job was cancelled: end it ``cancelled``, take
    its pending descendants along, and free its lease after the commit."""
    with transaction.atomic():
        change = transitions.cancel_attempt(
            job_id=job_id, attempt=attempt, message=f"attempt {attempt} stopped: cancelled"
        )
        if change is None:
            return False
        cancel_descendants(job_id, reason=f"parent {job_id} was cancelled")
        release_after_commit(job_id, attempt)
    return True


def cancel_descendants(job_id: UUID | str, *, reason: str) -> int:
    """Cancel every pending descendant of a job that will never complete."""
    ids = list(graph.descendant_ids(job_id))
    return len(transitions.cancel_descendants(job_ids=ids, reason=reason))


def release_after_commit(job_id: UUID | str, attempt: int) -> None:
    """After the commit: free the attempt's lease and ask for a dispatch (one round trip)."""
    lease = ledger.lease_id(job_id, attempt)
    transaction.on_commit(functools.partial(_release_and_dispatch, lease))


def _release_and_dispatch(lease: str) -> None:
    """Free a lease and ask for a dispatch. Redis failing is logged, not raised: the job's
    end is committed already, the scheduler's ledger reconcile frees a lease whose job holds
    none, and its tick dispatches what waits (as ``events.broadcast`` does after a completion)."""
    try:
        ledger.ledger_release([lease], then=wakeup.request_dispatch_in)
    except redis.RedisError as exc:
        logger.warning("could not free lease %s now; the reconcile will: %s", lease, exc)
