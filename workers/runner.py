"""Running one attempt of a job inside a Celery worker process.

``run_attempt`` is the whole life of a delivery: start (a CAS that refuses a stale or
duplicate delivery), run the handler while a heartbeat renews the lease and watches for a
cancel, then record the outcome and dispatch whatever became ready.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connections

from jobs import ledger
from jobs.lifecycle import job_cancel_running, job_complete, job_fail_attempt, job_start
from jobs.models import DeadLetterReason, Job
from workers.handlers import get_handler
from workers.handlers.base import HandlerError, JobCancelled, JobContext

logger = logging.getLogger("draconic.worker")
T = TypeVar("T")


class Heartbeat(threading.Thread):
    """Renews the attempt's lease every third of its lifetime and, every second, looks for a
    cancel request (one indexed read), which it passes to the handler through ``cancel``."""

    def __init__(self, job_id: str, attempt: int, cancel: threading.Event) -> None:
        super().__init__(name=f"heartbeat-{job_id}", daemon=True)
        self.lease = ledger.lease_id(job_id, attempt)
        self.job_id = job_id
        self.cancel = cancel
        self.stopped = threading.Event()

    def run(self) -> None:
        renew_every = max(settings.DRACONIC_LEASE_SECONDS / 3, 0.2)
        tick = min(renew_every, 1.0)
        next_renewal = time.monotonic() + renew_every
        while not self.stopped.wait(tick):
            try:
                if time.monotonic() >= next_renewal:
                    held = ledger.ledger_renew(self.lease)
                    next_renewal = time.monotonic() + renew_every
                    if not held and not self._still_running():
                        # The scheduler gave up on this attempt (its lease expired while we
                        # were stalled): stop the handler; its result would be ignored anyway.
                        self.cancel.set()
                if not self.cancel.is_set() and Job.objects.filter(
                    id=self.job_id, cancel_requested=True
                ).exists():
                    self.cancel.set()
            except Exception:  # keep beating: a missed renewal is retried next tick
                logger.warning("heartbeat for %s failed", self.lease, exc_info=True)
                connections.close_all()  # this thread's connection may be the broken part
        connections.close_all()

    def _still_running(self) -> bool:
        _, attempt = ledger.parse_lease(self.lease)
        return Job.objects.filter(id=self.job_id, attempt=attempt, status="running").exists()

    def stop(self) -> None:
        self.stopped.set()


def run_attempt(job_id: str, attempt: int, *, worker: str) -> str:
    """Run attempt ``attempt`` of ``job_id``; returns what happened, for the worker's log."""
    job = _start(job_id, attempt, worker)
    if job is None:
        return "skipped: stale or duplicate delivery"
    cancel = threading.Event()
    heartbeat = Heartbeat(str(job.id), attempt, cancel)
    heartbeat.start()
    try:
        outcome = _execute(job, cancel)
    finally:
        heartbeat.stop()
    return outcome


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


def _execute(job: Job, cancel: threading.Event) -> str:
    attempt = job.attempt
    handler = get_handler(job.type)
    try:
        if handler is None:
            raise HandlerError(f"no handler is registered for job type {job.type!r}", permanent=True)
        result = handler.run(JobContext(job, cancel_event=cancel))
        _check_json(result)
    except JobCancelled:
        _record(lambda: job_cancel_running(job_id=job.id, attempt=attempt))
        return "cancelled"
    except SoftTimeLimitExceeded:
        status = _record(
            lambda: job_fail_attempt(
                job_id=job.id,
                attempt=attempt,
                error=f"timed out after {job.timeout_seconds}s",
                reason=DeadLetterReason.TIMEOUT,
            )
        )
        return f"timeout -> {status}"
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:5000]
        trace = traceback.format_exc()[-20000:]
        permanent = bool(getattr(exc, "permanent", False))
        status = _record(
            lambda: job_fail_attempt(
                job_id=job.id, attempt=attempt, error=error, traceback=trace, permanent=permanent
            )
        )
        return f"failed -> {status}"
    if not _record(lambda: job_complete(job_id=job.id, attempt=attempt, result=result)):
        return "completed, but the attempt had been superseded: result ignored"
    return "completed"


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
        raise HandlerError(f"the handler returned a result that is not JSON: {exc}", permanent=True) from exc
