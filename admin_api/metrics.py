"""Platform figures, computed on demand from PostgreSQL and Redis: the JSON of
``GET /admin/metrics`` and the Prometheus collector of ``GET /metrics`` read the same snapshot.

Everything is computed at read time from shared state, never counted in a process, so any
number of API and worker processes report the same figures and a scrape of any one of them
is the whole truth. The cost is bounded whatever the table size: four SQL queries (jobs by
status and priority through the index ``job_status_priority_idx``, the ready ones through
``job_ready_idx``, open dead letters by reason, the last hour of completed jobs through the
partial index ``job_completed_at_idx``) and three Redis round trips (queue lengths, ledger,
worker heartbeats).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from kombu.transport.redis import PRIORITY_STEPS
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from draconic.celery import PRIORITY_QUEUES
from jobs.engine import ledger
from jobs.models import DeadLetter, Job, JobStatus, Priority
from workers.liveness import alive_workers

#: Upper bounds (seconds) of the queue-wait and run-time histogram buckets.
BUCKETS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
#: kombu's separator between a queue name and its priority step (Redis transport).
_PRIORITY_SEP = "\x06\x16"


@dataclass(frozen=True)
class Durations:
    """Seconds over a window: quantiles (None when no job) and cumulative bucket counts."""

    count: int = 0
    total: float = 0.0
    p50: float | None = None
    p95: float | None = None
    buckets: tuple[int, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    jobs_by_status: dict[str, int]
    jobs_by_priority: dict[str, int]
    ready_by_priority: dict[str, int]
    queue_depth: dict[str, int | None]
    dead_letters_by_reason: dict[str, int]
    completed_last_minute: int
    completed_last_hour: int
    queue_wait: Durations
    run_time: Durations
    usage: ledger.Usage | None
    workers: list[str] = field(default_factory=list)


# The SQL below is built from module constants only (no input), hence the noqa: S608.
# JOB_COUNTS: jobs by status and priority, read from the small index job_status_priority_idx
# alone (an index-only scan: a million jobs are a few MB of it), never the table itself.
# "priority >= 0" holds for every job (the column's CHECK); it is that index's predicate.
_JOB_COUNTS = f"""
SELECT status, priority, count(*) FROM {Job._meta.db_table}
WHERE priority >= 0
GROUP BY status, priority
"""
# READY_COUNTS: the admittable jobs whose parents are done and whose time has come, by
# priority: the partial index job_ready_idx holds exactly the first two conditions.
_READY_COUNTS = f"""
SELECT priority, count(*) FROM {Job._meta.db_table}
WHERE status IN ('pending', 'retrying') AND pending_parents = 0
  AND (next_attempt_at IS NULL OR next_attempt_at <= now())
GROUP BY priority
"""


def job_counts() -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Jobs by status, by priority, and the ready ones (admittable, parents done, due) by
    priority: jobs waiting for resources. Two queries, each through an index."""
    by_status = dict.fromkeys(JobStatus.values, 0)
    by_priority = dict.fromkeys(Priority.labels, 0)
    ready = dict.fromkeys(Priority.labels, 0)
    with connection.cursor() as cursor:
        cursor.execute(_JOB_COUNTS)
        for status, priority, count in cursor.fetchall():
            by_status[status] = by_status.get(status, 0) + count
            by_priority[str(Priority(priority).label)] += count
        cursor.execute(_READY_COUNTS)
        for priority, count in cursor.fetchall():
            ready[str(Priority(priority).label)] += count
    return by_status, by_priority, ready


def dead_letters_by_reason() -> dict[str, int]:
    """Open (not re-driven nor discarded) dead letters by reason. One query."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT reason, count(*) FROM {DeadLetter._meta.db_table} "
            "WHERE requeued_at IS NULL AND discarded_at IS NULL GROUP BY reason"
        )
        return dict(cursor.fetchall())


def _duration_columns(expr: str, alias: str) -> str:
    buckets = ", ".join(f"count(*) FILTER (WHERE {expr} <= {b})" for b in BUCKETS)
    return (
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {expr}) AS {alias}_p50, "
        f"percentile_cont(0.95) WITHIN GROUP (ORDER BY {expr}) AS {alias}_p95, "
        f"coalesce(sum({expr}), 0) AS {alias}_sum, {buckets}"
    )


_WAIT = "extract(epoch FROM started_at - created_at)"
_RUN = "extract(epoch FROM completed_at - started_at)"
_COMPLETED_WINDOW = f"""
SELECT count(*) FILTER (WHERE completed_at >= now() - interval '1 minute'), count(*),
       {_duration_columns(_WAIT, "wait")}, {_duration_columns(_RUN, "run")}
FROM {Job._meta.db_table}
WHERE status = 'completed' AND completed_at >= now() - interval '1 hour'
  AND started_at IS NOT NULL
"""


def _durations(count: int, row: Sequence[Any]) -> Durations:
    p50, p95, total, *buckets = row
    return Durations(
        count=count,
        total=float(total),
        p50=None if p50 is None else float(p50),
        p95=None if p95 is None else float(p95),
        buckets=tuple(int(b) for b in buckets),
    )


def completed_window() -> tuple[int, int, Durations, Durations]:
    """Completed in the last minute, in the last hour, and over that hour the queue wait
    (``started_at - created_at``) and run time (``completed_at - started_at``). One query."""
    with connection.cursor() as cursor:
        cursor.execute(_COMPLETED_WINDOW)
        row = cursor.fetchone()
    minute, hour = int(row[0]), int(row[1])
    width = 3 + len(BUCKETS)
    wait = _durations(hour, row[2 : 2 + width])
    run = _durations(hour, row[2 + width : 2 + 2 * width])
    return minute, hour, wait, run


def _broker() -> redis.Redis:
    return redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_timeout=5, socket_connect_timeout=5
    )


def queue_depth() -> dict[str, int | None]:
    """Messages waiting in each Celery queue on the broker (``LLEN``, over kombu's priority
    sub-lists); None for all when the broker is unreachable. One round trip."""
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    names = [
        (queue, f"{prefix}{queue}{_PRIORITY_SEP}{step}" if step else f"{prefix}{queue}")
        for queue in PRIORITY_QUEUES
        for step in PRIORITY_STEPS
    ]
    try:
        with _broker() as client:
            pipe = client.pipeline(transaction=False)
            for _, name in names:
                pipe.llen(name)
            lengths = pipe.execute()
    except redis.RedisError:
        return dict.fromkeys(PRIORITY_QUEUES)
    depth: dict[str, int | None] = dict.fromkeys(PRIORITY_QUEUES, 0)
    for (queue, _), length in zip(names, lengths, strict=True):
        depth[queue] = (depth[queue] or 0) + int(length)
    return depth


def snapshot() -> Snapshot:
    """All the figures, now. Redis being down blanks the Redis figures; it never raises."""
    by_status, by_priority, ready = job_counts()
    minute, hour, wait, run = completed_window()
    try:
        usage: ledger.Usage | None = ledger.ledger_usage()
        workers = [w.hostname for w in alive_workers()]
    except redis.RedisError:
        usage, workers = None, []
    return Snapshot(
        jobs_by_status=by_status,
        jobs_by_priority=by_priority,
        ready_by_priority=ready,
        queue_depth=queue_depth(),
        dead_letters_by_reason=dead_letters_by_reason(),
        completed_last_minute=minute,
        completed_last_hour=hour,
        queue_wait=wait,
        run_time=run,
        usage=usage,
        workers=workers,
    )


def _durations_json(d: Durations) -> dict[str, Any]:
    return {"count": d.count, "p50_seconds": d.p50, "p95_seconds": d.p95}


def snapshot_json(s: Snapshot) -> dict[str, Any]:
    """The body of ``GET /admin/metrics``."""
    usage = s.usage
    return {
        "jobs_by_status": s.jobs_by_status,
        "jobs_by_priority": s.jobs_by_priority,
        "jobs_waiting_for_resources": sum(s.ready_by_priority.values()),
        "jobs_waiting_for_resources_by_priority": s.ready_by_priority,
        "queue_depth": s.queue_depth,
        "dead_letters_by_reason": s.dead_letters_by_reason,
        "dead_letters_open": sum(s.dead_letters_by_reason.values()),
        "throughput": {"last_minute": s.completed_last_minute, "last_hour": s.completed_last_hour},
        "queue_wait_last_hour": _durations_json(s.queue_wait),
        "run_time_last_hour": _durations_json(s.run_time),
        "resources": None
        if usage is None
        else {
            "cpu_units": {"used": usage.cpu_units, "capacity": usage.capacity_cpu},
            "memory_mb": {"used": usage.memory_mb, "capacity": usage.capacity_memory},
            "leases": usage.leases,
        },
        "workers": {"alive": len(s.workers), "hostnames": s.workers},
    }


def _gauge(name: str, doc: str, labels: Sequence[str], values: dict[Any, Any]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=list(labels))
    for label, value in values.items():
        if value is not None:
            family.add_metric(list(label) if isinstance(label, tuple) else [str(label)], value)
    return family


def _histogram(name: str, doc: str, d: Durations) -> GaugeHistogramMetricFamily:
    cumulative = [(floatToGoString(b), float(n)) for b, n in zip(BUCKETS, d.buckets, strict=False)]
    return GaugeHistogramMetricFamily(
        name, doc, buckets=[*cumulative, ("+Inf", float(d.count))], gsum_value=d.total
    )


class DraconicCollector(Collector):
    """Prometheus view of :func:`snapshot`, computed at scrape time (see the module doc)."""

    def collect(self) -> Iterator[Any]:
        s = snapshot()
        yield _gauge("draconic_jobs", "Jobs by status.", ["status"], s.jobs_by_status)
        yield _gauge(
            "draconic_jobs_by_priority", "Jobs by priority.", ["priority"], s.jobs_by_priority
        )
        yield _gauge(
            "draconic_jobs_ready",
            "Admittable jobs waiting for resources, by priority.",
            ["priority"],
            s.ready_by_priority,
        )
        yield _gauge(
            "draconic_queue_depth",
            "Messages waiting in each Celery queue.",
            ["queue"],
            s.queue_depth,
        )
        yield _gauge(
            "draconic_dead_letters",
            "Open dead letters by reason.",
            ["reason"],
            s.dead_letters_by_reason,
        )
        yield _gauge(
            "draconic_jobs_completed_window",
            "Jobs completed within the trailing window.",
            ["window"],
            {"1m": s.completed_last_minute, "1h": s.completed_last_hour},
        )
        yield from _duration_families(
            "draconic_queue_wait_seconds", "Queue wait (started - created)", s.queue_wait
        )
        yield from _duration_families(
            "draconic_run_time_seconds", "Run time (completed - started)", s.run_time
        )
        yield from _resource_families(s)
        yield GaugeMetricFamily(
            "draconic_workers_alive", "Workers with a live heartbeat.", value=len(s.workers)
        )


def _duration_families(name: str, doc: str, d: Durations) -> Iterator[Any]:
    yield _histogram(name, f"{doc} of jobs completed in the last hour.", d)
    yield _gauge(
        f"{name}_quantile",
        f"{doc}, quantiles over the last hour.",
        ["quantile"],
        {"0.5": d.p50, "0.95": d.p95},
    )


def _resource_families(s: Snapshot) -> Iterator[Any]:
    usage = s.usage
    if usage is None:
        return
    yield _gauge(
        "draconic_resource_used",
        "Resources held by admitted jobs (ledger).",
        ["resource"],
        {"cpu_units": usage.cpu_units, "memory_mb": usage.memory_mb},
    )
    yield _gauge(
        "draconic_resource_capacity",
        "Resource capacity (settings).",
        ["resource"],
        {"cpu_units": usage.capacity_cpu, "memory_mb": usage.capacity_memory},
    )
    yield GaugeMetricFamily(
        "draconic_ledger_leases", "Leases held in the ledger.", value=usage.leases
    )


def registry() -> CollectorRegistry:
    """A registry with only the Draconic collector (no per-process figures: they would differ
    between the processes behind one load balancer)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(DraconicCollector())
    return reg
