"""A worker's lifecycle and the leases of its attempts (the worker's main process).

SIGTERM (or a first Ctrl-C) is Celery's warm shutdown: the worker stops taking deliveries and
waits for its running tasks. Celery waits for them without a bound; here they get
``DRACONIC_SHUTDOWN_GRACE_SECONDS``. Whatever still runs then is handed back
(``jobs.engine.interrupted.job_hand_back``: pending again, not charged, its log says why)
*before* its pool process is killed, so the attempt is fenced off first and a result it
produces in between is refused. A cold shutdown (SIGQUIT, a second Ctrl-C) gets no grace:
Celery stops the tasks at once, and their attempts are handed back right away.

Celery's own ``worker_soft_shutdown_timeout`` is not used: it applies to the cold shutdown
only (SIGTERM needs ``REMAP_SIGTERM=SIGQUIT`` in every launcher's environment), and it sleeps
the whole timeout inside the signal handler, blocking the event loop, even when the tasks
end in the first second.

A pool process that dies while it runs an attempt (killed, out of memory) is reported to the
main process as a ``WorkerLostError`` of that delivery (``AttemptRequest``): the attempt is
settled as lost at once (charged, as a lease expiry would settle it), not a lease later.

On ``worker_ready``, before its first delivery, a worker frees what an earlier process of
the same name left running (``jobs.engine.interrupted.worker_restarted``): that process
died without a shutdown, so those attempts are lost (charged), just settled sooner than
their leases would expire. A revoked task's lease is freed once its job has left the attempt
(whoever revoked it, e.g. the scheduler's cancel or timeout sweep, settles the job).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from typing import Any

from billiard.exceptions import WorkerLostError
from celery.signals import task_revoked, worker_ready, worker_shutting_down
from celery.worker import state
from celery.worker.request import Request
from django.conf import settings
from django.db import connections

from jobs.engine.interrupted import (
    job_hand_back,
    job_settle_lost,
    release_if_settled,
    worker_restarted,
)
from jobs.models import Job, JobStatus

logger = logging.getLogger("draconic.worker")

#: How often the grace period looks whether the running tasks have ended.
POLL_SECONDS = 0.1

_consumer: Any = None
_stopping = threading.Lock()


@worker_ready.connect
def _free_previous_incarnation(sender: Any = None, **_: Any) -> None:
    """``sender`` is the consumer; this runs before the event loop takes a delivery."""
    global _consumer  # the grace period needs the pool, to end what outlives it
    _consumer = sender
    try:
        worker_restarted(worker=_hostname(sender))
    except Exception:  # the lease sweep settles them later; the worker must still start
        logger.exception("could not settle the attempts of this worker's previous process")
    finally:
        connections.close_all()


@worker_shutting_down.connect
def _shutting_down(sender: Any = None, how: str = "Warm", **_: Any) -> None:
    """Runs inside Celery's signal handler: start a thread, do nothing else here (logging
    could deadlock on a lock the interrupted code holds)."""
    if not _stopping.acquire(blocking=False):
        return  # a second signal: the thread of the first one is already at work
    grace = settings.DRACONIC_SHUTDOWN_GRACE_SECONDS if how == "Warm" else 0.0
    threading.Thread(
        target=_grace_then_hand_back,
        args=(str(sender or ""), grace),
        name="draconic-shutdown",
        # Not a daemon: a cold shutdown ends the worker without waiting for anything, and the
        # interpreter then still waits for this thread to finish handing back.
        daemon=False,
    ).start()


def _grace_then_hand_back(hostname: str, grace: float) -> None:
    running = len(state.active_requests)
    logger.warning(
        "worker %s shutting down: taking no new jobs; %d running get %gs "
        "(DRACONIC_SHUTDOWN_GRACE_SECONDS) to finish, then are handed back",
        hostname,
        running,
        grace,
        extra={"worker": hostname, "grace_seconds": grace, "running": running},
    )
    deadline = time.monotonic() + grace
    while state.active_requests and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    try:
        handed = hand_back_all(hostname)
    finally:
        connections.close_all()
    if handed:
        logger.warning("worker %s handed back %d unfinished attempts", hostname, handed)


def hand_back_all(hostname: str) -> int:
    """Hand back every attempt this worker still runs, then end the pool processes running
    them. Returns how many it handed back."""
    requests = list(state.active_requests)
    attempts = _running_in_database(hostname)
    attempts.update(a for a in map(_attempt_of, requests) if a is not None)
    handed = 0
    for job_id, attempt in sorted(attempts):
        why = f"worker {hostname} is shutting down"
        handed += (
            job_hand_back(job_id=job_id, attempt=attempt, worker=hostname, why=why) is not None
        )
    for request in requests:
        _end_process_of(request)
    return handed


def _running_in_database(hostname: str) -> set[tuple[str, int]]:
    """Attempts recorded as running on this worker (a delivery Celery already dropped, in a
    cold shutdown, is not among its active requests any more)."""
    rows = Job.objects.filter(status=JobStatus.RUNNING, worker=hostname[:255])
    return {(str(i), a) for i, a in rows.values_list("id", "attempt")}


def _attempt_of(request: Any) -> tuple[str, int] | None:
    args: Any = getattr(request, "args", None) or ()
    # The task's own name (a Request's ``type``, a Context's ``task``): ``name`` is the job
    # type's, Celery's shadow name for Flower.
    name = getattr(request, "type", None) or getattr(request, "task", None)
    if name != "draconic.execute_job" or len(args) != 2:
        return None
    return str(args[0]), int(args[1])


def _end_process_of(request: Any) -> None:
    pool = getattr(_consumer, "pool", None)
    pid = getattr(request, "worker_pid", None)
    if pool is None or pid is None:
        return
    with contextlib.suppress(NotImplementedError, OSError):  # a pool without processes
        pool.terminate_job(pid, signal.SIGKILL)


class AttemptRequest(Request):
    """A delivery of ``draconic.execute_job`` as the worker's main process tracks it."""

    def on_failure(
        self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False
    ) -> None:
        super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)
        exc = getattr(exc_info.exception, "exc", exc_info.exception)  # ExceptionWithTraceback
        attempt = _attempt_of(self)
        if not isinstance(exc, WorkerLostError) or attempt is None:
            return
        why = f"its pool process exited ({exc})"[:300]
        try:
            job_settle_lost(job_id=attempt[0], attempt=attempt[1], why=why)
        except Exception:  # the lease sweep settles it later
            logger.warning("could not settle %s:%s now", *attempt, exc_info=True)
        finally:
            connections.close_all()


@task_revoked.connect
def _revoked(request: Any = None, **_: Any) -> None:
    attempt = _attempt_of(request)
    if attempt is not None:
        try:
            release_if_settled(job_id=attempt[0], attempt=attempt[1])
        except Exception:  # the ledger reconcile frees it later
            logger.warning("could not free the lease of revoked %s", attempt, exc_info=True)


def _hostname(consumer: Any) -> str:
    return str(getattr(consumer, "hostname", "") or "unknown")
