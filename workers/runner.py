"""Running one attempt of a job inside a Celery worker process.

``run_attempt`` is the whole life of a delivery: start (a CAS that refuses a stale or
duplicate delivery), run the handler while the lease keeper (``workers.lease_keeper``) renews
the lease and passes on a cancel, then record the outcome and dispatch whatever became ready.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError, close_old_connections, connections

from jobs.engine.attempts import job_complete, job_fail_attempt, job_start
from jobs.engine.cancel import cancel_running_attempt
from jobs.models import DeadLetterReason, Job, JobStatus
from jobs.types import HandlerError, JobCancelled, JobContext, get_handler
from workers.lease_keeper import keeper

logger = logging.getLogger("draconic.worker")
T = TypeVar("T")


@dataclass(frozen=True)
class Outcome:
    """What an attempt came to: the job's status it recorded ("" if it recorded nothing) and
    a line for the worker's log."""

    status: str
    summary: str


def run_attempt(job_id: str, attempt: int, *, worker: str) -> Outcome:
    """Run attempt ``attempt`` of ``job_id``; returns what happened."""
    cancel = threading.Event()
    # Watched before the start commits: a cancel requested as soon as the job shows running is
    # pushed to a lease this process already listens for. Watched after it, a push that came
    # first was dropped, and the handler ran on until the fallback poll.
    lease = keeper.watch(str(job_id), attempt, cancel)
    try:
        job = _start(job_id, attempt, worker)
        if job is None:
            return Outcome("", "skipped: stale or duplicate delivery")
        keeper.renewing(lease)
        return _execute(job, cancel)
    finally:
        keeper.unwatch(lease)


def _start(job_id: str, attempt: int, worker: str) -> Job | None:
    """Start the attempt on a connection that is known to work.

    Connections are reused between jobs without a health-check query; when PostgreSQL was
    restarted meanwhile, the first statement fails and is retried once on a new connection
    (nothing was written: the failed statement's transaction rolled back)."""
    close_old_connections()  # recycles connections past WORKER_DB_CONN_MAX_AGE
    try:
        return job_start(job_id=job_id, attempt=attempt, worker=worker)
    except (OperationalError, InterfaceError):
        connections.close_all()
        return job_start(job_id=job_id, attempt=attempt, worker=worker)


def _execute(job: Job, cancel: threading.Event) -> Outcome:
    attempt = job.attempt
    handler = get_handler(job.type)
    try:
        if handler is None:
            raise HandlerError(
                f"no handler is registered for job type {job.type!r}", permanent=True
            )
        result = handler.run(JobContext(job, cancel_event=cancel))
        _check_json(result)
    except JobCancelled:
        ended = _record(lambda: cancel_running_attempt(job_id=job.id, attempt=attempt))
        return Outcome(JobStatus.CANCELLED if ended else "", "cancelled")
    except SoftTimeLimitExceeded:
        status = _record(
            lambda: job_fail_attempt(
                job_id=job.id,
                attempt=attempt,
                error=f"timed out after {job.timeout_seconds}s",
                reason=DeadLetterReason.TIMEOUT,
            )
        )
        return Outcome(status or "", f"timeout -> {status}")
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:5000]
        trace = traceback.format_exc()[-20000:]
        # HandlerError(permanent=True), or the type's retry policy gives up on this exception.
        permanent = handler.is_permanent(exc) if handler is not None else True
        status = _record(
            lambda: job_fail_attempt(
                job_id=job.id, attempt=attempt, error=error, traceback=trace, permanent=permanent
            )
        )
        return Outcome(status or "", f"failed -> {status}")
    if not _record(lambda: job_complete(job_id=job.id, attempt=attempt, result=result)):
        return Outcome("", "completed, but the attempt had been superseded: result ignored")
    return Outcome(JobStatus.COMPLETED, "completed")


#: Pauses between tries to record an outcome while PostgreSQL is unreachable (about a minute;
#: the heartbeat keeps the lease alive meanwhile).
RECORD_BACKOFF = (0.1, 0.3, 1, 2, 4, 8, 15, 30)


def _record(write: Callable[[], T]) -> T | None:
    """Record an attempt's outcome, retrying through a lost connection, a restarted
    PostgreSQL or a deadlock: every outcome is a fenced compare-and-swap, so a retry after a
    commit whose acknowledgement was lost changes nothing. Gives up (None) after about a
    minute; the lease then expires and the scheduler settles the attempt as lost."""
    for pause in (*RECORD_BACKOFF, None):
        try:
            return write()
        except (OperationalError, InterfaceError, SoftTimeLimitExceeded) as exc:
            connections.close_all()
            if pause is None:
                logger.error("could not record the outcome of an attempt: %s", exc)
                return None
            logger.warning("recording the outcome failed (%s); retrying in %ss", exc, pause)
            time.sleep(pause)
    return None


def _check_json(result: Any) -> None:
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        raise HandlerError(
            f"the handler returned a result that is not JSON: {exc}", permanent=True
        ) from exc
