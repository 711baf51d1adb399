"""Admission: which ready jobs may start now, and moving them to ``queued``.

One pass reads the ready jobs (``statements.READY_JOBS``: parents done, time come, highest
priority first, then oldest) in small pages with ``FOR UPDATE SKIP LOCKED``, refuses the ones
larger than the whole cluster (``capacity``), and asks ``decide`` which of the rest start now.
``decide`` is the one place where the admission rule lives: it books the jobs' CPU and memory
in one Lua call of the Redis ledger, atomically against every other process, so a job that
does not fit is passed over without blocking the ones behind it, except that a job that waited
longer than ``DRACONIC_STARVATION_SECONDS`` becomes a barrier: nothing behind it is admitted
until the capacity it needs drains. The granted jobs move to ``queued`` and are published to
Celery after the commit.

One dispatcher at a time holds a PostgreSQL advisory lock; a process that finds it taken
leaves a "dirty" flag in Redis (``wakeup``) that the holder sees before it lets go, so no
request to dispatch is lost and two dispatchers never book the same capacity.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.db import Error as DBError
from django.db import connection, transaction
from django.utils import timezone

from jobs.engine import capacity, deadletter, ledger, prepared, recovery, statements, wakeup
from jobs.engine.publish import Delivery, publish
from jobs.engine.transitions import admit_jobs
from jobs.models import DeadLetterReason
from jobs.redis_client import get_redis

logger = logging.getLogger("draconic.dispatcher")

_LOCK_KEY = 0x4452_4143  # "DRAC"
#: How many ready rows one pass may look at before it yields (bounds a pass's time).
MAX_SCAN = 2000


@dataclass(frozen=True)
class Ready:
    """A ready job as admission reads it (a row of ``statements.READY_JOBS``)."""

    id: UUID
    type: str
    priority: int
    cpu_units: int
    memory_mb: int
    attempt: int
    timeout_seconds: int
    created_at: datetime
    waiting_since: datetime


@dataclass(frozen=True)
class Decision:
    admitted: list[Ready]
    """The jobs whose resources are now booked, in the order they were read."""
    stop: bool
    """Admit nothing more this pass: a starving job is waiting for room, or the cluster is full."""


def dispatch() -> int:
    """Admit every ready job that fits. Returns how many this process admitted."""
    client = get_redis()
    dirty = wakeup.dirty_key()
    client.set(dirty, 1)
    admitted = 0
    while True:
        with dispatch_lock() as got:
            if not got:
                return admitted  # the holder will see our dirty flag before it lets go
            while client.getdel(dirty):
                admitted += admit_ready()
        if not client.exists(dirty):
            return admitted


def dispatch_here() -> None:
    """Run a dispatch pass in this process (a worker whose job released children), falling
    back to a request to the scheduler if Redis or PostgreSQL fails us here."""
    try:
        dispatch()
    except Exception:
        logger.warning("inline dispatch failed; leaving it to the scheduler", exc_info=True)
        wakeup.request_dispatch()


@contextmanager
def dispatch_lock() -> Iterator[bool]:
    """Hold the dispatcher's advisory lock if it is free; yields whether we got it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_LOCK_KEY])
        got = bool(cursor.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
            except DBError:
                # The session died (PostgreSQL restarted) and its lock with it; let the
                # original error, if any, be the one that propagates.
                connection.close()


def wait_for_room(hold: float) -> None:
    """While the cluster is nearly full (less than an eighth of its CPU units free), wait up to
    ``hold`` seconds, woken by each release, for more room: the jobs in flight keep the
    workers busy meanwhile, and one pass then admits many jobs instead of one per release.
    A nearly empty cluster, or one with a small capacity, is served at once."""
    deadline = time.monotonic() + hold
    while True:
        usage = ledger.ledger_usage()
        free = usage.capacity_cpu - usage.cpu_units
        left = deadline - time.monotonic()
        if free >= max(1, usage.capacity_cpu // 8) or left <= 0:
            return
        wakeup.wait_for_request(left)


def admit_ready() -> int:
    """One pass over the ready jobs (the caller holds the dispatch lock)."""
    usage = ledger.ledger_usage()
    free = usage.capacity_cpu - usage.cpu_units
    if free <= 0 or usage.memory_mb >= usage.capacity_memory:
        return 0  # nothing can fit until a job ends (and its release asks again)
    # Every job needs at least one CPU unit: with few free, lock and read few rows.
    limit = min(settings.DRACONIC_DISPATCH_BATCH, max(free, 8))
    after: Ready | None = None
    admitted = scanned = 0
    while scanned < MAX_SCAN:
        with transaction.atomic():
            rows = ready_page(after=after, limit=limit)
            if not rows:
                break
            scanned += len(rows)
            after = rows[-1]
            decision = decide(_refuse_oversize(rows))
            if decision.admitted:
                _mark_queued(decision.admitted)
                admitted += len(decision.admitted)
        if decision.stop:
            break
    return admitted


def ready_page(*, after: Ready | None, limit: int) -> list[Ready]:
    """The next ``limit`` ready jobs after ``after`` (from the start if None), locked."""
    with connection.cursor() as cursor:
        if after is None:
            prepared.execute(cursor, (statements.READY_JOBS, {"limit": limit}))
        else:
            keyset = {"priority": after.priority, "created_at": after.created_at, "id": after.id}
            prepared.execute(cursor, (statements.READY_JOBS_AFTER, {**keyset, "limit": limit}))
        return [Ready(**row) for row in prepared.rows(cursor)]


def decide(rows: Sequence[Ready]) -> Decision:
    """Which of ``rows`` start now: book them in the ledger, in order, all or nothing each."""
    if not rows:
        return Decision(admitted=[], stop=False)
    now = timezone.now()
    starving = settings.DRACONIC_STARVATION_SECONDS
    claims = [
        ledger.Claim(
            lease=ledger.lease_id(r.id, r.attempt + 1),
            cpu_units=r.cpu_units,
            memory_mb=r.memory_mb,
            barrier=(now - r.waiting_since).total_seconds() >= starving,
        )
        for r in rows
    ]
    try:
        granted = ledger.ledger_reserve(claims)
    except ledger.LedgerLost:
        recovery.rebuild_ledger()
        granted = ledger.ledger_reserve(claims)
    admitted = [r for r, ok in zip(rows, granted, strict=True) if ok]
    if len(admitted) == len(rows):
        return Decision(admitted=admitted, stop=False)
    barred = any(c.barrier and not ok for c, ok in zip(claims, granted, strict=True))
    usage = ledger.ledger_usage()
    full = usage.cpu_units >= usage.capacity_cpu or usage.memory_mb >= usage.capacity_memory
    return Decision(admitted=admitted, stop=barred or full)


def _refuse_oversize(rows: Sequence[Ready]) -> list[Ready]:
    """Dead-letter the jobs larger than the whole cluster (its capacity shrank since they
    were submitted); returns the others."""
    fits = []
    for row in rows:
        errors = capacity.capacity_errors(cpu_units=row.cpu_units, memory_mb=row.memory_mb)
        if errors:
            deadletter.job_dead_letter_waiting(
                job_id=row.id,
                reason=DeadLetterReason.EXCEEDS_CAPACITY,
                error="; ".join(errors.values()),
            )
        else:
            fits.append(row)
    return fits


def _mark_queued(rows: Sequence[Ready]) -> None:
    changes = admit_jobs(job_ids=[r.id for r in rows])
    moved = {c.job_id for c in changes}
    if len(moved) != len(rows):  # cannot happen while the rows are locked; be loud if it does
        lost = [ledger.lease_id(r.id, r.attempt + 1) for r in rows if r.id not in moved]
        ledger.ledger_release(lost)
        logger.error("admission lost %d locked rows; released their leases", len(lost))
    deliveries = [
        Delivery(r.id, r.attempt + 1, r.priority, r.timeout_seconds, r.type)
        for r in rows
        if r.id in moved
    ]
    transaction.on_commit(lambda: publish(deliveries))
