"""Admission: which ready jobs may start now, and moving them to ``queued``.

One pass reads the order of the ready jobs once (``statements.READY_ORDER``: parents done,
time come), then takes them in small pages locked with ``FOR UPDATE SKIP LOCKED``
(``READY_PAGE``), in the order of the one admission policy:

- **Priority, aged.** A job counts one priority up for each ``DRACONIC_AGING_SECONDS`` it has
  waited (a ``low`` job waiting three periods competes as ``critical``).
- **Round-robin within a priority.** Among jobs of the same (aged) priority, each owner and
  concurrency key takes its turn: the first job of every (owner, key), then the second of
  each, and so on; within a turn (and within a line) a higher ``priority_rank`` first (a
  client's exact priority inside its level, as django.tasks gives it), then oldest. One
  tenant's backlog delays another's job by about one job per other (owner, key) with work
  waiting, not by the whole backlog.
- **Starving past the top.** A job that has aged beyond ``critical`` (it waited one period
  more than it took to get there) is *starving*: if it does not fit the free CPU or memory,
  nothing after it is admitted until the capacity it needs drains.

It refuses the jobs larger than the whole cluster (``capacity``), and asks ``decide`` which of
the rest start now. ``decide`` books each job's CPU, memory and every limit rule that applies
to it (``limits``) in one Lua call of the Redis ledger, atomically against every other
process, so a job that does not fit, or that a limit holds back, is passed over without
blocking the ones behind it. A job held back by a rate limit leaves a due time (``wakeup``)
for when its next token comes, so it is admitted then, not at the next tick; a job held back
by a concurrency limit is admitted by the dispatch that every release requests. The granted
jobs move to ``queued`` and are published to Celery after the commit.

One dispatcher at a time holds the dispatch lease (``fence``: a Redis key with an expiry and a
fencing token, renewed by every page's reserve); a process that finds it taken leaves a
"dirty" flag in Redis (``wakeup``) that the holder sees before it lets go, so no request to
dispatch is lost.
Two dispatchers never book the same capacity whether or not the lease is held: the rows are
locked ``SKIP LOCKED`` and each booking is one atomic Lua call, fenced by the lease's token,
so a holder that was frozen past its lease books nothing when it wakes. A holder that stops
loses the lease within ``DRACONIC_DISPATCH_LEASE_SECONDS``; the next dispatch or scheduler
tick takes it over.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction

from jobs.engine import (
    capacity,
    deadletter,
    fence,
    ledger,
    limits,
    prepared,
    recovery,
    statements,
    wakeup,
)
from jobs.engine.publish import Delivery, publish
from jobs.engine.transitions import admit_jobs
from jobs.models import DeadLetterReason
from jobs.pools import services as pools
from jobs.redis_client import get_redis

logger = logging.getLogger("draconic.dispatcher")

#: How many ready rows one pass may look at before it yields (bounds a pass's time).
MAX_SCAN = 2000
#: A pass reads at most the free CPU units plus this many jobs of one (owner, key) line: no
#: more can start, bar those passed over (too big for the room left, or held by a job type's
#: limit). A line a limit holds back so fills at most that much of the MAX_SCAN window.
LINE_SLACK = 64


@dataclass(frozen=True)
class Ready:
    """A ready job as admission reads it (a row of ``statements.READY_PAGE``, placed)."""

    id: UUID
    type: str
    priority: int
    concurrency_key: str
    cpu_units: int
    memory_mb: int
    attempt: int
    timeout_seconds: int
    created_at: datetime
    waiting_since: datetime
    effective_priority: int
    """Its priority aged by its wait; -1 means starving (aged past ``critical``)."""
    turn: int
    """Its place in its (owner, concurrency key)'s line at its effective priority, from 1."""


@dataclass(frozen=True)
class Decision:
    admitted: list[Ready]
    """The jobs whose resources are now booked, in the order they were read."""
    stop: bool
    """Admit nothing more this pass: a starving job is waiting for room, or the cluster is full."""
    wake_in: float | None = None
    """Seconds until the next token a rate-held job waits for; None if none is rate-held."""


def dispatch() -> int:
    """Admit every ready job that fits. Returns how many this process admitted."""
    client = get_redis()
    dirty = wakeup.dirty_key()
    client.set(dirty, 1)
    admitted = 0
    while True:
        try:
            with fence.hold() as got:
                if not got:
                    return admitted  # the holder sees our dirty flag before it lets go
                while client.getdel(dirty):
                    admitted += admit_ready()
        except fence.Fenced:
            # Our lease expired mid-pass (we were stopped or slow): the pass rolled back what
            # it had not committed; hand the request to whoever holds the lease now.
            logger.warning("dispatch lease lost mid-pass; leaving the rest to its next holder")
            wakeup.request_dispatch()
            return admitted
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


def wait_for_room(hold: float) -> None:
    """While the cluster is nearly full (less than an eighth of its CPU units free), wait up to
    ``hold`` seconds, woken by each release, for more room: the jobs in flight keep the
    workers busy meanwhile, and one pass then admits many jobs instead of one per release.
    A nearly empty cluster, or one with a small capacity, is served at once, and so is a
    dispatch that is due (a rate-held job's token came)."""
    deadline = time.monotonic() + hold
    while True:
        usage = ledger.ledger_usage()
        free = usage.capacity_cpu - usage.cpu_units
        left = deadline - time.monotonic()
        due = wakeup.seconds_until_token()
        if free >= max(1, usage.capacity_cpu // 8) or left <= 0 or (due is not None and due <= 0):
            return  # room, or waited enough, or a rate-held job's token is due now
        wakeup.wait_for_request(left)


def admit_ready() -> int:
    """One pass over the ready jobs (the caller holds the dispatch lease, ``fence``; raises
    ``fence.Fenced`` if it expired, having rolled back the page it was on)."""
    wakeup.clear_due()  # this pass serves it; a job still rate-held sets the next one
    usage = ledger.ledger_usage()
    free = usage.capacity_cpu - usage.cpu_units
    if free <= 0 or usage.memory_mb >= usage.capacity_memory:
        return 0  # nothing can fit until a job ends (and its release asks again)
    # Every job needs at least one CPU unit: with few free, lock and read few rows.
    limit = min(settings.DRACONIC_DISPATCH_BATCH, max(free, 8))
    rules = limits.load_rules()
    order = ready_order(turns=free + LINE_SLACK)
    admitted = 0
    wake_in: float | None = None
    for start in range(0, len(order), limit):
        # The page's reserve renews the dispatch lease, or finds it lost and raises Fenced
        # (rolling the page back); a page with nothing to reserve renews it on its own.
        with transaction.atomic():
            rows = _refuse_oversize(ready_page(order[start : start + limit]))
            if not rows:
                fence.keep()
            decision = decide(rows, rules)
            if decision.admitted:
                _mark_queued(decision.admitted)
                admitted += len(decision.admitted)
        if decision.wake_in is not None:
            wake_in = decision.wake_in if wake_in is None else min(wake_in, decision.wake_in)
        if decision.stop:
            break
    if wake_in is not None:
        wakeup.dispatch_due_in(wake_in)
    return admitted


@dataclass(frozen=True)
class Place:
    """A ready job's place in this pass's order (a row of ``statements.READY_ORDER``)."""

    id: UUID
    effective_priority: int
    turn: int


def ready_order(*, turns: int = MAX_SCAN) -> list[Place]:
    """The first ``MAX_SCAN`` ready jobs in admission order, read once per pass (the window
    that counts the turns runs over every ready job, so once, not once a page), at most
    ``turns`` of each (owner, key) line (``LINE_SLACK``). The jobs of a type no live worker
    pool serves are not read (``jobs.pools.services.held_types``): they wait without a place."""
    params = {
        "aging_seconds": settings.DRACONIC_AGING_SECONDS,
        "limit": MAX_SCAN,
        "turns": max(1, turns),
        "held_types": pools.held_types(),
    }
    with connection.cursor() as cursor:
        prepared.execute(cursor, (statements.READY_ORDER, params))
        return [Place(**row) for row in prepared.rows(cursor)]


def ready_page(places: Sequence[Place]) -> list[Ready]:
    """Those of ``places`` still ready, in their order, locked."""
    where = {p.id: p for p in places}
    with connection.cursor() as cursor:
        prepared.execute(cursor, (statements.READY_PAGE, {"job_ids": list(where)}))
        rows = prepared.rows(cursor)
    return [
        Ready(
            **row,
            effective_priority=where[row["id"]].effective_priority,
            turn=where[row["id"]].turn,
        )
        for row in rows
    ]


def decide(rows: Sequence[Ready], rules: limits.Rules | None = None) -> Decision:
    """Which of ``rows`` start now: book them in the ledger, in order, all or nothing each."""
    if not rows:
        return Decision(admitted=[], stop=False)
    rules = limits.Rules([]) if rules is None else rules
    claims = [
        ledger.Claim(
            lease=ledger.lease_id(r.id, r.attempt + 1),
            cpu_units=r.cpu_units,
            memory_mb=r.memory_mb,
            barrier=r.effective_priority < 0,
            names=limits.job_names(r.type, r.concurrency_key),
            checks=rules.checks(r.type, r.concurrency_key),
        )
        for r in rows
    ]
    try:
        reservation = ledger.ledger_reserve_all(claims)
    except ledger.LedgerLost:
        recovery.rebuild_ledger()
        reservation = ledger.ledger_reserve_all(claims)
    outcomes = reservation.outcomes
    admitted = [r for r, o in zip(rows, outcomes, strict=True) if o == ledger.GRANTED]
    if len(admitted) == len(rows):
        return Decision(admitted=admitted, stop=False)
    barred = any(c.barrier and o == ledger.NO_ROOM for c, o in zip(claims, outcomes, strict=True))
    usage = ledger.ledger_usage()
    full = usage.cpu_units >= usage.capacity_cpu or usage.memory_mb >= usage.capacity_memory
    return Decision(admitted=admitted, stop=barred or full, wake_in=reservation.wake_in)


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
