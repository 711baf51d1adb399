"""The lease keeper of a worker process: it keeps the leases of the attempts it runs alive and
tells their handlers when to stop. (Not the liveness beat of ``workers.liveness``, which says
the worker is up.)

One thread renews each lease every third of its lifetime; a lease found no longer held, of an
attempt no longer running, means the scheduler gave up on it: the handler is told to stop. A
cancel request reaches the handler at once through Redis pub/sub (``jobs.engine.cancel``
publishes the attempt's lease; a second thread listens), and as a fallback the keeper reads
the cancel notices of all its attempts every ``DRACONIC_CANCEL_POLL_SECONDS`` (one Redis
``MGET``). A job that ends within a second costs it nothing.

The keeper's threads never touch PostgreSQL: Django gives each thread a connection of its own,
and a worker process is to hold one (the main thread's, which runs the attempts; docs/scaling.md
counts them). Whether a lease that is no longer held was given up is told by the ledger alone:
the scheduler frees a running attempt's lease only after it settled the attempt (lost, timed
out) or found its job no longer running at that attempt; a ledger Redis lost (no ``epoch``) is
rebuilt with the lease, so the keeper waits for that rather than stopping the handler.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import Any

import redis
from django.conf import settings

from jobs.engine import ledger
from jobs.engine.cancel import cancel_channel, cancel_notice_key
from jobs.redis_client import get_redis

logger = logging.getLogger("draconic.worker")

#: lease -> (job id, the handler's cancel event, when the lease is next renewed)
Watched = dict[str, tuple[str, threading.Event, float]]


class LeaseKeeper:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: Watched = {}
        self._pid = -1

    def start(self) -> None:
        """Start this process's threads, once (a forked pool process starts its own). Called
        when a pool process starts, so the listener is subscribed before a job arrives."""
        with self._lock:
            self._start_here()

    def _start_here(self) -> None:
        if self._pid == os.getpid():
            return
        self._watched, self._pid = {}, os.getpid()
        for target, name in ((self._run, "lease-keeper"), (self._listen, "cancel-listener")):
            threading.Thread(target=target, name=f"draconic-{name}", daemon=True).start()

    def watch(self, job_id: str, attempt: int, cancel: threading.Event) -> str:
        """Pass a cancel of this attempt on to ``cancel``; its lease is renewed only from
        ``renewing``. An attempt is watched before its start commits (so no cancel pushed once
        it shows running is missed), and a queued job's lease keeps "never expires" until its
        attempt has started."""
        lease = ledger.lease_id(job_id, attempt)
        with self._lock:
            self._start_here()
            self._watched[lease] = (job_id, cancel, float("inf"))
        return lease

    def renewing(self, lease: str) -> None:
        """Start renewing a watched lease: its attempt has started."""
        with self._lock:
            entry = self._watched.get(lease)
            if entry is not None:
                self._watched[lease] = (entry[0], entry[1], time.monotonic() + _renew_every())

    def unwatch(self, lease: str) -> None:
        with self._lock:
            self._watched.pop(lease, None)

    def _run(self) -> None:
        next_poll = time.monotonic() + settings.DRACONIC_CANCEL_POLL_SECONDS
        while True:
            time.sleep(min(_renew_every(), settings.DRACONIC_CANCEL_POLL_SECONDS))
            with self._lock:
                watched = dict(self._watched)
            if not watched:
                continue
            try:
                self._renew(watched)
                if time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + settings.DRACONIC_CANCEL_POLL_SECONDS
                    _poll_cancels(watched)
            except Exception:  # keep going: a missed renewal is retried next tick
                logger.warning("lease keeper failed", exc_info=True)

    def _renew(self, watched: Watched) -> None:
        now = time.monotonic()
        for lease, (job_id, cancel, due) in watched.items():
            if now < due:
                continue
            with self._lock:
                if lease in self._watched:
                    self._watched[lease] = (job_id, cancel, now + _renew_every())
            if not ledger.ledger_renew(lease) and _given_up(lease):
                cancel.set()  # superseded: its result would be ignored anyway

    def _listen(self) -> None:
        """Receive cancel requests as they are made; reconnect after a Redis outage."""
        while True:
            pubsub = get_redis().pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(cancel_channel())
                for message in pubsub.listen():
                    self._cancelled(message)
            except redis.RedisError:
                logger.warning("cancel listener lost Redis; the poll covers meanwhile")
                time.sleep(1)
            finally:
                with contextlib.suppress(redis.RedisError):
                    pubsub.close()  # its connection goes back to the pool, or away

    def _cancelled(self, message: dict[str, Any]) -> None:
        lease = message["data"].decode() if isinstance(message["data"], bytes) else message["data"]
        with self._lock:
            entry = self._watched.get(lease)
        if entry is not None and not entry[1].is_set():
            entry[1].set()
            logger.info("cancel of %s delivered at once", lease, extra={"lease": lease})


#: The lease keeper of this process.
keeper = LeaseKeeper()


def _renew_every() -> float:
    return max(settings.DRACONIC_LEASE_SECONDS / 3, 0.2)


def _poll_cancels(watched: Watched) -> None:
    waiting = [(lease, cancel) for lease, (_, cancel, _) in watched.items() if not cancel.is_set()]
    if not waiting:
        return
    notices = get_redis().mget([cancel_notice_key(lease) for lease, _ in waiting])
    for (_, cancel), notice in zip(waiting, notices, strict=True):
        if notice is not None:
            cancel.set()


def _given_up(lease: str) -> bool:
    """A lease the renewal found not held: given up by the scheduler, unless Redis lost the
    whole ledger (then the rebuild from PostgreSQL brings the lease back: renew again)."""
    return ledger.ledger_is_present() and not ledger.ledger_renew(lease)
