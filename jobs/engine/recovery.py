"""Keeping the Redis ledger equal to what PostgreSQL says holds resources: the ``queued`` and
``running`` jobs. PostgreSQL is the truth; the ledger is rebuilt from it whenever Redis lost
its data, and stray leases are freed. The limits come back with it: their rules live in
PostgreSQL (read on each admission pass), their counters are the leases' limit names, rebuilt
here (a lost rate bucket starts full). Runs beside admission: see ``reconcile_ledger``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from django.conf import settings
from django.db import transaction

from jobs.engine import ledger, limits
from jobs.engine.publish import Delivery, publish
from jobs.models import Job, JobStatus

logger = logging.getLogger("draconic.scheduler")


@dataclass(frozen=True)
class Leased:
    """A job that holds a lease: queued (never expires) or running (renewed by its worker)."""

    id: UUID
    attempt: int
    cpu_units: int
    memory_mb: int
    status: str
    priority: int
    timeout_seconds: int
    type: str
    concurrency_key: str

    @property
    def lease(self) -> str:
        return ledger.lease_id(self.id, self.attempt)

    @property
    def names(self) -> tuple[str, ...]:
        return limits.job_names(self.type, self.concurrency_key)


def leased_jobs() -> list[Leased]:
    rows = Job.objects.filter(status__in=(JobStatus.QUEUED, JobStatus.RUNNING)).values(
        "id",
        "attempt",
        "cpu_units",
        "memory_mb",
        "status",
        "priority",
        "timeout_seconds",
        "type",
        "concurrency_key",
    )
    return [Leased(**row) for row in rows]


def rebuild_ledger(jobs: Sequence[Leased] | None = None, *, republish: bool = True) -> int:
    """Rebuild the ledger from PostgreSQL's leased jobs (``jobs``, read now if not given).
    After Redis lost its data, ``republish`` sends the queued jobs again (their messages were
    lost with it). Returns how many leases the ledger holds now."""
    jobs = leased_jobs() if jobs is None else jobs
    ttl = settings.DRACONIC_LEASE_SECONDS
    ledger.ledger_rebuild(
        (
            j.lease,
            j.cpu_units,
            j.memory_mb,
            float("inf") if j.status == JobStatus.QUEUED else ttl,
            j.names,
        )
        for j in jobs
    )
    queued = [
        Delivery(j.id, j.attempt, j.priority, j.timeout_seconds, j.type)
        for j in jobs
        if j.status == JobStatus.QUEUED
    ]
    logger.warning(
        "ledger rebuilt from PostgreSQL: %d leases, %d re-published",
        len(jobs),
        len(queued) if republish else 0,
    )
    if republish:
        publish(queued)
    return len(jobs)


def reconcile_ledger() -> int:
    """Make the ledger hold exactly the leases of ``queued``/``running`` jobs. Returns how many
    stray leases it freed.

    It runs beside admission (another dispatcher, or one whose dispatch lease expired while it
    was frozen, may be between its reserve and its commit), so it never replaces the ledger:
    a lease PostgreSQL holds and Redis misses is added, and a lease Redis holds is freed,
    each only while this process holds its job's row and sees that the job does (or does
    not) hold it; a row another transaction has locked (an admission or a settle in flight)
    is skipped, its lease left for the next tick."""
    # Redis first, then PostgreSQL: a job is settled in PostgreSQL before its lease is
    # released, so a lease missing from the first read cannot belong to a job the second
    # read still sees as leased, unless Redis lost it; and an admission reserves before it
    # commits, so a lease the second read sees was in Redis before it (a repeat adds nothing).
    held = ledger.ledger_leases()
    jobs = leased_jobs()
    truth = {j.lease for j in jobs}
    missing = [j for j in jobs if j.lease not in held]
    if missing:
        _add_missing(missing)
    candidates = [lease for lease in held if lease not in truth]
    if not candidates:
        return 0
    with transaction.atomic():
        stray = _unheld(candidates)
        if stray:
            logger.warning("freeing %d ledger leases of jobs that no longer hold any", len(stray))
        return ledger.ledger_release(stray)


def _add_missing(jobs: Sequence[Leased]) -> int:
    """Add the leases of ``jobs`` the ledger misses, each only while this transaction holds
    its job's row (rows locked by others skipped) and sees it still hold that attempt: a job
    read as leased may have run, settled and released its lease since (it settles in
    PostgreSQL first, under its row lock), and adding its lease back would book capacity for
    nothing until the next reconcile. Returns how many it added."""
    with transaction.atomic():
        still = set(
            Job.objects.select_for_update(skip_locked=True)
            .filter(id__in=[j.id for j in jobs], status__in=(JobStatus.QUEUED, JobStatus.RUNNING))
            .values_list("id", "attempt", "status")
        )
        held = [j for j in jobs if (j.id, j.attempt, j.status) in still]
        if not held:
            return 0
        logger.warning("ledger misses %d leases held in PostgreSQL; adding them", len(held))
        return ledger.ledger_add_missing(_entry(j) for j in held)


def _entry(job: Leased) -> ledger.Entry:
    ttl = float("inf") if job.status == JobStatus.QUEUED else settings.DRACONIC_LEASE_SECONDS
    return (job.lease, job.cpu_units, job.memory_mb, ttl, job.names)


def _unheld(leases: Sequence[str]) -> list[str]:
    """Those of ``leases`` whose job, read under its row lock (taken here, rows locked by
    others skipped), is gone or holds no lease of that attempt."""
    wanted = {lease: ledger.parse_lease(lease) for lease in leases}
    ids = {job_id for job_id, _ in wanted.values() if _is_uuid(job_id)}
    existing = {str(i) for i in Job.objects.filter(id__in=ids).values_list("id", flat=True)}
    locked = {
        str(i): (attempt, status)
        for i, attempt, status in Job.objects.select_for_update(skip_locked=True)
        .filter(id__in=ids)
        .values_list("id", "attempt", "status")
    }

    def unheld(job_id: str, attempt: int) -> bool:
        if job_id not in existing:
            return True  # its job is gone (or the lease is not a job's)
        return job_id in locked and locked[job_id] not in _holding(attempt)

    return [lease for lease, (job_id, attempt) in wanted.items() if unheld(job_id, attempt)]


def _holding(attempt: int) -> set[tuple[int, str]]:
    return {(attempt, JobStatus.QUEUED), (attempt, JobStatus.RUNNING)}


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True
