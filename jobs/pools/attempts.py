"""An external worker's attempts, as the worker API reports them: each call names the job and
the attempt, is refused for a job of a type its pool does not serve (``PoolScopeError``, 403)
and, for an attempt that is not (or no longer) running (``StaleAttempt``, 409). The state
changes are the built-in workers' own (``jobs.engine.attempts``, ``jobs.engine.cancel``):
the same fenced compare-and-swaps, leases and releases. A worker that stops gracefully hands
its unfinished attempts back (``attempt_hand_back``) as a built-in worker does: uncharged.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings
from rest_framework.exceptions import NotFound

from jobs.engine import attempts, ledger
from jobs.engine.interrupted import job_hand_back
from jobs.errors import JobConflict, ServiceError
from jobs.models import DeadLetterReason, ExecutionLog, Job, JobDependency, JobStatus
from jobs.pools.models import WorkerPool
from jobs.pools.services import pool_touch


class PoolScopeError(ServiceError):
    status_code = 403


class StaleAttempt(JobConflict):
    """The attempt is not running: superseded, settled, or never started. Nothing changed."""


def scoped_job(*, pool: WorkerPool, job_id: UUID) -> Job:
    """The job, if it is of a type ``pool`` serves."""
    job = Job.objects.filter(id=job_id).first()
    if job is None:
        raise NotFound(f"no job {job_id}")
    if job.type not in pool.type_names():
        raise PoolScopeError(f"job {job_id} is not of a type the pool {pool.name!r} serves")
    return job


def running(*, pool: WorkerPool, job_id: UUID, attempt: int) -> Job:
    job = scoped_job(pool=pool, job_id=job_id)
    if job.status != JobStatus.RUNNING or job.attempt != attempt:
        raise _stale(job, attempt)
    return job


def _stale(job: Job, attempt: int) -> StaleAttempt:
    return StaleAttempt(
        f"attempt {attempt} of job {job.id} is not running (the job is {job.status} "
        f"at attempt {job.attempt}); nothing was changed"
    )


def attempt_start(*, pool: WorkerPool, job_id: UUID, attempt: int, worker: str) -> dict[str, Any]:
    """queued -> running for this attempt (the fenced start); what the runtime needs."""
    scoped_job(pool=pool, job_id=job_id)
    name = _worker_name(pool, worker)
    job = attempts.job_start(job_id=job_id, attempt=attempt, worker=name)
    if job is None:
        raise _stale(Job.objects.get(id=job_id), attempt)
    # As a built-in worker does right after its start: the queued lease never expires until
    # it is first renewed (a worker killed before that is armed by the scheduler's sweep).
    ledger.ledger_renew(ledger.lease_id(job.id, attempt))
    pool_touch(pool=pool)
    return {
        "job_id": str(job.id),
        "attempt": job.attempt,
        "type": job.type,
        "payload": job.payload,
        "timeout_seconds": job.timeout_seconds,
        "lease_seconds": settings.DRACONIC_LEASE_SECONDS,
    }


def attempt_renew(*, pool: WorkerPool, job_id: UUID, attempt: int) -> dict[str, Any]:
    """Push the attempt's lease ahead; tells the worker whether the job was cancelled."""
    job = running(pool=pool, job_id=job_id, attempt=attempt)
    held = ledger.ledger_renew(ledger.lease_id(job.id, attempt))
    pool_touch(pool=pool)
    return {"cancel_requested": job.cancel_requested, "lease_held": held}


def attempt_log(
    *, pool: WorkerPool, job_id: UUID, attempt: int, message: str, level: str, context: Any
) -> None:
    running(pool=pool, job_id=job_id, attempt=attempt)
    ExecutionLog.objects.create(
        job_id=job_id, attempt=attempt, level=level, message=message, context=context
    )


def attempt_progress(*, pool: WorkerPool, job_id: UUID, attempt: int, progress: Any) -> None:
    """Progress is a log line whose context carries it (the WebSocket replays it too)."""
    shown = f"{progress:.0%}" if isinstance(progress, (int, float)) else "updated"
    attempt_log(
        pool=pool,
        job_id=job_id,
        attempt=attempt,
        message=f"progress: {shown}",
        level="info",
        context={"progress": progress},
    )


def attempt_parents(*, pool: WorkerPool, job_id: UUID, attempt: int) -> dict[str, Any]:
    running(pool=pool, job_id=job_id, attempt=attempt)
    rows = JobDependency.objects.filter(job_id=job_id).values_list(
        "depends_on_id", "depends_on__type", "depends_on__result"
    )
    return {str(pid): {"type": ptype, "result": result} for pid, ptype, result in rows}


def attempt_complete(*, pool: WorkerPool, job_id: UUID, attempt: int, result: Any) -> None:
    job = scoped_job(pool=pool, job_id=job_id)
    if not attempts.job_complete(job_id=job_id, attempt=attempt, result=result):
        raise _stale(Job.objects.get(id=job.id), attempt)


def attempt_fail(
    *,
    pool: WorkerPool,
    job_id: UUID,
    attempt: int,
    error: str,
    traceback: str,
    permanent: bool,
    timeout: bool,
) -> str:
    """Retry or dead-letter the attempt (cancelled instead, if its job was cancelled)."""
    scoped_job(pool=pool, job_id=job_id)
    status = attempts.job_fail_attempt(
        job_id=job_id,
        attempt=attempt,
        error=error,
        traceback=traceback,
        permanent=permanent,
        reason=DeadLetterReason.TIMEOUT if timeout else None,
    )
    if status is None:
        raise _stale(Job.objects.get(id=job_id), attempt)
    return status


def attempt_hand_back(*, pool: WorkerPool, job_id: UUID, attempt: int, worker: str) -> str:
    """Give running attempt ``attempt`` back unfinished, uncharged (``job_hand_back``): the
    pool's worker ``worker`` is shutting down and its grace ran out. The job is ``pending``
    again (``cancelled`` if its cancel was requested); the attempt is fenced off, so its late
    outcome is refused like any stale one. Another worker's attempt is refused (409)."""
    scoped_job(pool=pool, job_id=job_id)
    why = f"worker {pool.name}/{worker} is shutting down"
    name = _worker_name(pool, worker)
    status = job_hand_back(job_id=job_id, attempt=attempt, worker=name, why=why)
    if status is None:
        job = Job.objects.get(id=job_id)
        if job.status == JobStatus.RUNNING and job.attempt == attempt and job.worker != name:
            raise StaleAttempt(
                f"attempt {attempt} of job {job_id} runs on another worker, not on {name!r}; "
                "nothing was changed"
            )
        raise _stale(job, attempt)
    return str(status)


def _worker_name(pool: WorkerPool, worker: str) -> str:
    """The name a pool's worker runs attempts under (``Job.worker``), as its start records it:
    a hand-back must come from that same name."""
    return f"{pool.name}/{worker}"[:255]
