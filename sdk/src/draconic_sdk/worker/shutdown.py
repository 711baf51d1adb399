"""A pool worker's graceful stop, as a built-in Draconic worker stops: stopping is not failing.

SIGTERM (or a first Ctrl-C) is Celery's warm shutdown: the worker takes no new deliveries and
waits for its running attempts. Celery would wait without a bound; here they get
``shutdown_grace`` seconds (``--shutdown-grace``, ``DRACONIC["SHUTDOWN_GRACE_SECONDS"]``).
Whatever still runs then has its pool process ended (SIGKILL) and only *then* is handed
back through the worker API (``/workers/attempts/hand-back``): the server puts the job back
to ``pending``, uncharged, so even a ``max_attempts: 1`` job never lands in the dead-letter
queue for a shutdown. The order matters: a job handed back first could start on another
worker while the old process still runs it. An attempt whose process cannot be ended (the
worker is not ready yet, or a solo or threads pool, which cannot end one job) is not handed
back: it finishes if the worker lets it, or is settled as lost when its lease expires. A cold
shutdown (SIGQUIT, a second Ctrl-C) gets no grace: Celery stops the pool at once and the
attempts are handed back right away.

A worker that crashes (SIGKILL, out of memory) cannot hand anything back: the server settles
its attempts as lost (charged) when their leases expire, as for its own workers.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from celery.signals import worker_ready, worker_shutting_down
from celery.worker import state

from draconic_sdk.worker.api import Stale, WorkerApi

logger = logging.getLogger("draconic_sdk.worker")

#: How often the grace period looks whether the running attempts have ended.
POLL_SECONDS = 0.1
TASK_NAME = "draconic.execute_job"


def attempt_of(request: Any) -> tuple[str, int] | None:
    """``(job_id, attempt)`` of a delivery of ``draconic.execute_job``, else None."""
    args: Any = getattr(request, "args", None) or ()
    name = getattr(request, "type", None) or getattr(request, "task", None)
    if name != TASK_NAME or len(args) != 2:
        return None
    return str(args[0]), int(args[1])


class GracefulStop:
    """Connects to Celery's worker signals in the worker's main process (``connect``)."""

    def __init__(self, api: WorkerApi, *, worker: str, grace: float) -> None:
        self.api, self.worker, self.grace = api, worker, grace
        self.consumer: Any = None
        self._stopping = threading.Lock()

    def connect(self) -> None:
        worker_ready.connect(self._ready, weak=False)
        worker_shutting_down.connect(self._shutting_down, weak=False)

    def _ready(self, sender: Any = None, **_: Any) -> None:
        self.consumer = sender  # its pool ends the processes of what is handed back

    def _shutting_down(self, sender: Any = None, how: str = "Warm", **_: Any) -> None:
        """Runs inside Celery's signal handler: note the running attempts and start a thread;
        nothing else here (logging could deadlock on a lock the interrupted code holds)."""
        if not self._stopping.acquire(blocking=False):
            return  # a second signal: the first one's thread is at work, and sees the pool end
        running = _attempts(list(state.active_requests))
        grace = self.grace if how == "Warm" else 0.0
        threading.Thread(
            target=self.grace_then_hand_back,
            args=(running, grace),
            name="draconic-shutdown",
            # Not a daemon: after a cold shutdown the interpreter still waits for the hand-back.
            daemon=False,
        ).start()

    def grace_then_hand_back(self, running: dict[tuple[str, int], Any], grace: float) -> int:
        """Wait up to ``grace`` for the running attempts (``(job_id, attempt)`` -> Celery
        request), then end the process of each one still out (and of any the worker ran when
        it was told to stop) and hand it back. Returns how many were handed back."""
        logger.warning(
            "worker %s shutting down: taking no new jobs; %d running get %gs "
            "(shutdown grace) to finish, then are handed back",
            self.worker,
            len(running),
            grace,
        )
        deadline = time.monotonic() + grace
        while _active() and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        # A cold shutdown may have dropped a delivery from the active ones already: its noted
        # request still names its process. One that ended meanwhile is refused (409), skipped.
        attempts = {**running, **_attempts(list(state.active_requests))}
        handed = 0
        for (job_id, attempt), request in sorted(attempts.items(), key=lambda item: item[0]):
            if self._end_process_of(request):
                handed += self._hand_back(job_id, attempt)
            else:
                logger.warning(
                    "attempt %s of %s left running: its pool process cannot be ended here; "
                    "not handed back (it is settled as lost if its lease expires)",
                    attempt,
                    job_id,
                )
        if handed:
            logger.warning("worker %s handed back %d unfinished attempts", self.worker, handed)
        return handed

    def _hand_back(self, job_id: str, attempt: int) -> bool:
        try:
            answer = self.api.hand_back(job_id, attempt, worker=self.worker)
        except Stale:
            return False  # it ended in the grace, or the server gave it up already
        except Exception:  # the server settles it when its lease expires (charged)
            logger.warning("could not hand back %s:%s", job_id, attempt, exc_info=True)
            return False
        logger.info("attempt %s of %s handed back: %s", attempt, job_id, answer.get("status"))
        return True

    def _end_process_of(self, request: Any) -> bool:
        """SIGKILL the pool process running ``request``. True once it cannot run the attempt
        any more (killed now, or already gone); False if this pool cannot end it."""
        pool = getattr(self.consumer, "pool", None)
        pid = getattr(request, "worker_pid", None)
        if pool is None or pid is None:
            return False
        try:
            pool.terminate_job(pid, signal.SIGKILL)
        except (NotImplementedError, OSError):  # a pool without processes of its own
            return False
        return True


def _attempts(requests: list[Any]) -> dict[tuple[str, int], Any]:
    """The deliveries of ``draconic.execute_job`` among ``requests``, by attempt."""
    found: dict[tuple[str, int], Any] = {}
    for request in requests:
        attempt = attempt_of(request)
        if attempt is not None:
            found[attempt] = request
    return found


def _active() -> bool:
    return any(attempt_of(r) is not None for r in list(state.active_requests))
