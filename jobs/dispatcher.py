"""Admission: move ready jobs to ``queued`` when the ledger has room, and publish them.

One dispatcher at a time holds a PostgreSQL advisory lock; a process that finds it taken
leaves a "dirty" flag in Redis that the holder sees before it lets go, so no request to
dispatch is lost and two dispatchers never book the same capacity. Rows are claimed with
``FOR UPDATE SKIP LOCKED`` in priority, then FIFO order, in small batches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import redis
from django.conf import settings
from django.db import Error as DBError
from django.db import connection, transaction
from django.utils import timezone

from jobs import ledger, sql
from jobs.models import Job, JobStatus, Priority
from jobs.redis_client import get_redis, key
from jobs.transitions import NOW, SQL, transition_many

logger = logging.getLogger("draconic.dispatcher")

_LOCK_KEY = 0x4452_4143  # "DRAC"
#: How many ready rows one pass may look at before it yields (bounds a pass's time).
MAX_SCAN = 2000


@dataclass(frozen=True)
class Ready:
    id: UUID
    priority: int
    cpu_units: int
    memory_mb: int
    attempt: int
    timeout_seconds: int
    created_at: datetime
    waiting_since: datetime


def request_dispatch() -> None:
    """Ask for a dispatch soon, cheaply (the API calls this after a submit): mark the work and
    wake a scheduler blocked on the wake-up list."""
    try:
        pipe = get_redis().pipeline(transaction=False)
        request_dispatch_in(pipe)
        pipe.execute()
    except redis.RedisError:
        logger.warning("could not request a dispatch; the scheduler tick will do it", exc_info=True)


def request_dispatch_in(pipe: redis.client.Pipeline) -> None:
    """Queue the commands of ``request_dispatch`` on a pipeline another call executes."""
    pipe.set(key("dispatch", "dirty"), 1)
    pipe.lpush(key("dispatch", "wake"), 1)
    pipe.ltrim(key("dispatch", "wake"), 0, 0)


def dispatch_here() -> None:
    """Run a dispatch pass in this process (a worker whose job released children), falling
    back to a request to the scheduler if Redis or PostgreSQL fails us here."""
    try:
        dispatch()
    except Exception:
        logger.warning("inline dispatch failed; leaving it to the scheduler", exc_info=True)
        request_dispatch()


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
        wait_for_request(left)


def wait_for_request(timeout: float) -> bool:
    """Block up to ``timeout`` seconds for a dispatch request; True if one came."""
    return get_redis().blpop([key("dispatch", "wake")], timeout=max(timeout, 0.01)) is not None


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


def dispatch() -> int:
    """Admit every ready job that fits. Returns how many this process admitted."""
    client = get_redis()
    dirty = key("dispatch", "dirty")
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


def _ready_batch(after: tuple[int, datetime, UUID] | None, limit: int) -> list[Ready]:
    table = Job._meta.db_table
    params: list[object] = []
    keyset = ""
    if after is not None:
        keyset = "AND (priority, created_at, id) > (%s, %s, %s)"
        params += list(after)
    statement = (
        f"SELECT id, priority, cpu_units, memory_mb, attempt, timeout_seconds, created_at, "
        f"COALESCE(next_attempt_at, created_at) FROM {table} "
        f"WHERE status IN ('pending', 'retrying') AND pending_parents = 0 "
        f"AND (next_attempt_at IS NULL OR next_attempt_at <= now()) {keyset} "
        f"ORDER BY priority, created_at, id LIMIT %s FOR UPDATE SKIP LOCKED"
    )
    with connection.cursor() as cursor:
        sql.execute(cursor, [(statement, [*params, limit])])
        return [Ready(*row) for row in cursor.fetchall()]


def admit_ready() -> int:
    """One pass over the ready jobs (the caller holds the dispatch lock)."""
    after: tuple[int, datetime, UUID] | None = None
    admitted = scanned = 0
    usage = ledger.ledger_usage()
    free = usage.capacity_cpu - usage.cpu_units
    if free <= 0 or usage.memory_mb >= usage.capacity_memory:
        return 0  # nothing can fit until a job ends (and its release asks again)
    # Every job needs at least one CPU unit: with few free, lock and read few rows.
    limit = min(settings.DRACONIC_DISPATCH_BATCH, max(free, 8))
    while scanned < MAX_SCAN:
        with transaction.atomic():
            rows = _ready_batch(after, limit)
            if not rows:
                break
            scanned += len(rows)
            after = (rows[-1].priority, rows[-1].created_at, rows[-1].id)
            rows = _refuse_oversize(rows)
            held, stop = _reserve(rows)
            if held:
                _mark_queued(held)
                admitted += len(held)
        if stop:
            break
    return admitted


def _refuse_oversize(rows: Sequence[Ready]) -> list[Ready]:
    """Jobs larger than the whole capacity can never run (capacity shrank since submit)."""
    from jobs.lifecycle import job_dead_letter
    from jobs.models import DeadLetterReason

    fits = []
    for row in rows:
        if row.cpu_units > settings.MAX_CPU_UNITS or row.memory_mb > settings.MAX_MEMORY_MB:
            job_dead_letter(
                job_id=row.id,
                attempt=None,
                from_=(JobStatus.PENDING, JobStatus.RETRYING),
                reason=DeadLetterReason.EXCEEDS_CAPACITY,
                error=f"needs {row.cpu_units} CPU / {row.memory_mb} MB; capacity is "
                f"{settings.MAX_CPU_UNITS} CPU / {settings.MAX_MEMORY_MB} MB",
            )
        else:
            fits.append(row)
    return fits


def _reserve(rows: Sequence[Ready]) -> tuple[list[Ready], bool]:
    """Book the rows that fit; returns them and whether admission should stop for now."""
    if not rows:
        return [], False
    now = timezone.now()
    claims = [
        ledger.Claim(
            lease=ledger.lease_id(r.id, r.attempt + 1),
            cpu_units=r.cpu_units,
            memory_mb=r.memory_mb,
            # Starvation guard: after a bounded wait, the oldest job of the highest priority
            # that does not fit stops everything behind it until the capacity it needs drains.
            barrier=(now - r.waiting_since).total_seconds() >= settings.DRACONIC_STARVATION_SECONDS,
        )
        for r in rows
    ]
    try:
        granted = ledger.ledger_reserve(claims)
    except ledger.LedgerLost:
        rebuild_ledger()
        granted = ledger.ledger_reserve(claims)
    held = [r for r, ok in zip(rows, granted, strict=True) if ok]
    if len(held) == len(rows):
        return held, False
    stopped = any(c.barrier and not ok for c, ok in zip(claims, granted, strict=True))
    usage = ledger.ledger_usage()
    full = usage.cpu_units >= usage.capacity_cpu or usage.memory_mb >= usage.capacity_memory
    return held, stopped or full


def _mark_queued(rows: Sequence[Ready]) -> None:
    changes = transition_many(
        [r.id for r in rows],
        from_=(JobStatus.PENDING, JobStatus.RETRYING),
        to=JobStatus.QUEUED,
        message="admitted: resources reserved",
        fields={"attempt": SQL("attempt + 1"), "queued_at": NOW, "next_attempt_at": None},
    )
    moved = {c.job_id for c in changes}
    if len(moved) != len(rows):  # cannot happen while the rows are locked; be loud if it does
        lost = [ledger.lease_id(r.id, r.attempt + 1) for r in rows if r.id not in moved]
        ledger.ledger_release(lost)
        logger.error("admission lost %d locked rows; released their leases", len(lost))
    batch = [(r.id, r.attempt + 1, r.priority, r.timeout_seconds) for r in rows if r.id in moved]
    transaction.on_commit(lambda: publish(batch))


def publish(batch: Sequence[tuple[UUID, int, int, int]]) -> None:
    """Send ``execute_job`` for each ``(job_id, attempt, priority, timeout)``, in order, on
    the queue named after the priority. A failure leaves the jobs queued; the scheduler
    re-publishes queued jobs that do not start."""
    from draconic.celery import app

    grace = settings.DRACONIC_TIMEOUT_GRACE_SECONDS
    try:
        # kombu's publish batch: every message of the pass in one Redis pipeline (one round
        # trip) instead of a round trip each; transports without it publish one by one.
        with app.producer_or_acquire() as producer, producer.batch():
            for job_id, attempt, priority, timeout in batch:
                app.send_task(
                    "draconic.execute_job",
                    args=[str(job_id), attempt],
                    task_id=celery_task_id(job_id, attempt),
                    queue=str(Priority(priority).label),
                    soft_time_limit=timeout,
                    time_limit=timeout + grace,
                    producer=producer,
                )
    except Exception:
        logger.exception(
            "could not publish %d jobs; the scheduler will re-publish them", len(batch)
        )


def celery_task_id(job_id: UUID | str, attempt: int) -> str:
    """Deterministic, so the scheduler can revoke exactly one attempt of a job."""
    return f"{job_id}:{attempt}"


#: ``(id, attempt, cpu, mem, status, priority, timeout)`` of a job that holds a lease.
LeasedRow = tuple[UUID, int, int, int, str, int, int]


def leased_jobs() -> list[LeasedRow]:
    """``(id, attempt, cpu, mem, status, priority, timeout)`` of every job holding a lease."""
    return list(
        Job.objects.filter(status__in=(JobStatus.QUEUED, JobStatus.RUNNING)).values_list(
            "id", "attempt", "cpu_units", "memory_mb", "status", "priority", "timeout_seconds"
        )
    )


def rebuild_ledger(rows: Sequence[LeasedRow] | None = None, *, republish: bool = True) -> int:
    """Rebuild the ledger from PostgreSQL's ``queued`` and ``running`` jobs (``rows``, read
    now if not given). After Redis lost its data, ``republish`` sends the queued jobs again
    (their messages were lost with it). Returns how many leases the ledger holds now. The
    caller holds the dispatch lock."""
    rows = leased_jobs() if rows is None else rows
    ttl = settings.DRACONIC_LEASE_SECONDS
    ledger.ledger_rebuild(
        (ledger.lease_id(i, a), cpu, mem, float("inf") if s == JobStatus.QUEUED else ttl)
        for i, a, cpu, mem, s, _, _ in rows
    )
    queued = [(i, a, p, t) for i, a, _, _, s, p, t in rows if s == JobStatus.QUEUED]
    logger.warning(
        "ledger rebuilt from PostgreSQL: %d leases, %d re-published",
        len(rows),
        len(queued) if republish else 0,
    )
    if republish:
        publish(queued)
    return len(rows)
