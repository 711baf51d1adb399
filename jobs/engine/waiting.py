"""Why a job is waiting: the reasons ``GET /jobs/{id}`` shows as ``waiting_on``.

A waiting job (``pending`` or ``retrying``) is first held by what is its own: its parents that
have not completed, and its time (a delayed job's ``run_at``, a retry's backoff). Only once
none of those holds does admission weigh it against the cluster, so only then do the
admission checks run, in the order the ledger's reserve script weighs them: the limit rules
that hold it (one reason per rule and limit name), then the capacity free in the ledger. Each
kind of reason is one small function that returns the reasons it finds (``{"reason": ...,
...}``), empty when it does not hold; ``waiting_on`` lists them in that order. An empty list
for a waiting job means nothing holds it: the next dispatch pass admits it.

A paused job type or priority (``jobs.models.Pause``) is one of the job's own reasons too:
``{"reason": "paused", "pause": "type" | "priority", "job_type" | "priority": ..., "since": ...}``,
one per pause that holds it.

It reads, never locks: the answer is a snapshot that may be stale by the time it is shown.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import redis
from django.db.models import Q
from django.utils import timezone

from jobs.engine import ledger, limits
from jobs.models import ADMITTABLE_STATUSES, Job, JobDependency, JobStatus, Pause, Priority
from jobs.pools import services as pools

Reason = dict[str, Any]
Check = Callable[[Job, datetime], list[Reason]]


def waiting_on(job: Job) -> list[Reason] | None:
    """What holds ``job`` back, in the order admission meets it; None for a job that is not
    waiting (queued, running or ended)."""
    if job.status not in ADMITTABLE_STATUSES:
        return None
    now = timezone.now()
    reasons = [r for check in OWN_CHECKS for r in check(job, now)]
    if reasons:
        return reasons
    return [r for check in ADMISSION_CHECKS for r in check(job, now)]


def parents(job: Job, now: datetime) -> list[Reason]:
    """The parents that have not completed yet (``pending_parents`` counts them)."""
    if job.pending_parents == 0:
        return []
    ids = (
        JobDependency.objects.filter(job_id=job.id)
        .exclude(depends_on__status=JobStatus.COMPLETED)
        .order_by("depends_on_id")
        .values_list("depends_on_id", flat=True)
    )
    return [{"reason": "parents", "job_ids": [str(i) for i in ids]}]


def run_at(job: Job, now: datetime) -> list[Reason]:
    """A delayed job before its time (``next_attempt_at`` is its gate, set from ``run_at``)."""
    if job.status != JobStatus.PENDING or not _gated(job, now):
        return []
    return [{"reason": "run_at", "at": job.next_attempt_at}]


def retry_backoff(job: Job, now: datetime) -> list[Reason]:
    """A failed attempt's backoff: the next attempt may not start before ``at``."""
    if job.status != JobStatus.RETRYING or not _gated(job, now):
        return []
    return [{"reason": "retry_backoff", "at": job.next_attempt_at, "next_attempt": job.attempt + 1}]


def paused(job: Job, now: datetime) -> list[Reason]:
    """The pauses of its type or of its priority: admission passes over it until resumed."""
    pauses = Pause.objects.filter(Q(job_type=job.type) | Q(priority=job.priority))
    return [_pause_reason(p) for p in pauses.order_by("id")]


def _pause_reason(pause: Pause) -> Reason:
    if pause.job_type is not None:
        return {
            "reason": "paused",
            "pause": "type",
            "job_type": pause.job_type,
            "since": pause.created_at,
        }
    label = Priority(pause.priority or 0).label  # the check constraint: set when no type
    return {"reason": "paused", "pause": "priority", "priority": label, "since": pause.created_at}


def limit(job: Job, now: datetime) -> list[Reason]:
    """Each limit rule that holds the job back now (``limits.holding``: by the ledger's
    counters and token buckets), naming the rule, the job's limit name it counts under, and
    that name's current use, so the user knows which rule to look at and what it waits for."""
    try:
        holds = limits.holding(job)
    except redis.RedisError:
        return []  # unknown while Redis is down; the rest of the answer still holds
    return [_limit_reason(hold) for hold in holds]


def _limit_reason(hold: limits.Hold) -> Reason:
    reason: Reason = {"reason": "limit", "rule": hold.rule, "name": hold.name, "kind": hold.kind}
    if hold.kind == "concurrency":
        return {**reason, "in_use": hold.in_use, "max_concurrency": hold.max_concurrency}
    tokens = round(hold.tokens or 0.0, 3)
    return {**reason, "rate": hold.rate, "tokens": tokens}


def capacity(job: Job, now: datetime) -> list[Reason]:
    """The cluster's free CPU or memory (the ledger's) is less than the job needs."""
    try:
        usage = ledger.ledger_usage()
    except redis.RedisError:
        return []  # unknown while Redis is down; the rest of the answer still holds
    cpu_free = max(usage.capacity_cpu - usage.cpu_units, 0)
    memory_free = max(usage.capacity_memory - usage.memory_mb, 0)
    if job.cpu_units <= cpu_free and job.memory_mb <= memory_free:
        return []
    return [
        {
            "reason": "capacity",
            "cpu_units_free": cpu_free,
            "memory_mb_free": memory_free,
            "needs": {"cpu_units": job.cpu_units, "memory_mb": job.memory_mb},
        }
    ]


def no_live_pool(job: Job, now: datetime) -> list[Reason]:
    """Its type is an external pool's and no worker of that pool is live: admission passes it
    over until one registers or beats again (``jobs.pools``)."""
    pool = pools.unserved_types().get(job.type)
    if pool is None:
        return []
    message = f"no live worker pool serves type {job.type}"
    return [{"reason": "no_live_pool", "type": job.type, "pool": pool, "message": message}]


def _gated(job: Job, now: datetime) -> bool:
    return job.next_attempt_at is not None and job.next_attempt_at > now


#: Reasons of the job's own, each independent of the others.
OWN_CHECKS: tuple[Check, ...] = (parents, run_at, retry_backoff, paused, no_live_pool)
#: What admission weighs a job against once nothing of its own holds it, in the order of the
#: ledger's reserve script: the limit rules, then CPU and memory.
ADMISSION_CHECKS: tuple[Check, ...] = (limit, capacity)
