"""Every worker the platform knows, for the console: one row each, from one function
(``worker_rows``) that other kinds of worker (external pools) join by adding their rows.

What is known about a Celery worker and where it comes from:

- alive, its concurrency, queues, pid, start time and whether it is quiet: its heartbeat in
  Redis (``workers.liveness``; alive while the key has not expired);
- last seen: the time of its last beat (kept a day after it stops beating);
- its running jobs: PostgreSQL, the ``running`` jobs whose ``worker`` is its name (one query
  over ``job_leased_idx``, at most ``RUNNING_SHOWN`` rows).

Quiet and stop are Celery broadcasts to that one worker (``workers.control``), answered
within ``CONTROL_TIMEOUT`` seconds or reported as not answered; the page never waits on a
worker longer than that.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import redis
from django.conf import settings
from django.db import transaction

from admin_api import audit
from jobs.models import Job, JobStatus, Priority, WorkerPool
from workers import liveness

#: How long a quiet or stop broadcast waits for the worker's answer.
CONTROL_TIMEOUT = 2.0
#: Running jobs read for the page, at most (the rest are counted per worker in the same rows).
RUNNING_SHOWN = 500


@dataclass
class RunningJob:
    id: UUID
    type: str
    started_at: datetime | None


@dataclass
class WorkerRow:
    name: str
    kind: str
    """``celery`` (a built-in worker); an external pool's rows say ``pool``."""
    alive: bool
    last_seen: datetime | None
    concurrency: int | None
    queues: list[str]
    quiet: bool
    started_at: str | None = None
    pid: int | None = None
    running: list[RunningJob] = field(default_factory=list)
    external: bool = False
    """An external pool's worker: shown, not quieted or stopped from here."""


def _running_by_worker() -> dict[str, list[RunningJob]]:
    rows = (
        Job.objects.filter(status=JobStatus.RUNNING)
        .order_by("started_at")
        .values_list("worker", "id", "type", "started_at")[:RUNNING_SHOWN]
    )
    found: dict[str, list[RunningJob]] = defaultdict(list)
    for worker, job_id, job_type, started in rows:
        found[worker].append(RunningJob(job_id, job_type, started))
    return found


def _at(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC)


def worker_rows() -> list[WorkerRow]:
    """Every Celery worker alive, seen in the last day, or holding running jobs, and every
    external pool's worker; alive ones first, then by name. Redis down: only what PostgreSQL knows (none alive)."""
    try:
        beats = {b.hostname: b.info for b in liveness.alive_workers()}
        seen = liveness.last_seen()
    except redis.RedisError:
        beats, seen = {}, {}
    running = _running_by_worker()
    pooled = pool_worker_rows(running)
    rows = list(pooled)
    for name in sorted((set(beats) | set(seen) | set(running)) - {row.name for row in pooled}):
        info = beats.get(name, {})
        rows.append(
            WorkerRow(
                name=name,
                kind="celery",
                alive=name in beats,
                last_seen=_at(seen.get(name)),
                concurrency=info.get("concurrency"),
                queues=list(info.get("queues") or []),
                quiet=bool(info.get("quiet")),
                started_at=info.get("started_at"),
                pid=info.get("pid"),
                running=running.get(name, []),
            )
        )
    return sorted(rows, key=lambda r: (not r.alive, r.name))


def pool_worker_rows(running: dict[str, list[RunningJob]]) -> list[WorkerRow]:
    """The workers of the external pools, as their registrations and heartbeats recorded them
    (``WorkerPool.workers``: one entry per worker heard from within the pool's live window),
    named ``<pool>/<worker>`` as their attempts are. They are the team's processes: the
    console shows them but cannot quiet or stop them (their own supervisor does)."""
    horizon = time.time() - settings.DRACONIC_POOL_LIVE_SECONDS
    rows = []
    for pool in WorkerPool.objects.order_by("name"):
        queues = [f"{pool.name}.{p.label}" for p in sorted(Priority, key=int)]
        for worker, info in sorted(pool.workers.items()):
            name = f"{pool.name}/{worker}"
            seen = float(info.get("last_seen", 0))
            rows.append(
                WorkerRow(
                    name=name,
                    kind=f"pool {pool.name}",
                    alive=seen >= horizon,
                    last_seen=_at(seen or None),
                    concurrency=info.get("concurrency"),
                    queues=queues,
                    quiet=False,
                    running=running.get(name, []),
                    external=True,
                )
            )
    return rows


def known_worker(name: str) -> bool:
    """Whether ``name`` is a worker alive now (one may only quiet or stop those)."""
    return any(b.hostname == name for b in liveness.alive_workers())


def _broadcast(command: str, name: str) -> bool:
    """Send ``command`` to the one worker ``name``; True if it answered in time."""
    from draconic.celery import app

    replies = app.control.broadcast(
        command, destination=[name], reply=True, timeout=CONTROL_TIMEOUT
    )
    return any(name in reply for reply in replies or [])


def worker_quiet(*, actor: Any, name: str) -> bool:
    """Quiet a worker: it takes no new job and finishes those it runs. Audited whether or not
    it answered (the broadcast was sent); True if it answered."""
    answered = _broadcast("draconic_quiet", name)
    with transaction.atomic():
        audit.record(actor, "quiet", f"worker {name}", count=1, detail={"answered": answered})
    return answered


def worker_stop(*, actor: Any, name: str) -> bool:
    """Warm-stop a worker (SIGTERM's shutdown, with the grace of ``workers.lifecycle``)."""
    answered = _broadcast("draconic_stop", name)
    with transaction.atomic():
        audit.record(actor, "stop", f"worker {name}", count=1, detail={"answered": answered})
    return answered
