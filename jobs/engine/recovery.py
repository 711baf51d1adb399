"""Keeping the Redis ledger equal to what PostgreSQL says holds resources: the ``queued`` and
``running`` jobs. PostgreSQL is the truth; the ledger is rebuilt from it whenever Redis lost
its data, and stray leases are freed. The limits come back with it: their rules live in
PostgreSQL (read on each admission pass), their counters are the leases' limit names, rebuilt
here (a lost rate bucket starts full). Runs under the dispatch lock."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from django.conf import settings

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
    stray leases it freed."""
    # Redis first, then PostgreSQL: a job is settled in PostgreSQL before its lease is
    # released, so a lease missing from the first read cannot belong to a job the second
    # read still sees as leased, unless Redis lost it.
    held = ledger.ledger_leases()
    jobs = leased_jobs()
    truth = {j.lease for j in jobs}
    stray = [lease for lease in held if lease not in truth]
    missing = [lease for lease in truth if lease not in held]
    if missing:
        logger.warning("ledger misses %d leases held in PostgreSQL; rebuilding", len(missing))
        rebuild_ledger(jobs, republish=False)
        return len(stray)
    if stray:
        logger.warning("freeing %d ledger leases of jobs that no longer hold any", len(stray))
    return ledger.ledger_release(stray)
