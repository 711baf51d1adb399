"""Pools: their tokens, their workers' registrations and heartbeats, which of them are live,
and the queues their types' jobs are published to.

A type belongs to one pool: the first pool that registers it owns it (a second pool
registering it is refused with 409), and a type built into the deployment cannot be
registered at all. So the route of a type never changes while it has jobs: ``route`` can
cache it and re-read only on a miss. A pool is live while some worker of it was heard from
within ``DRACONIC_POOL_LIVE_SECONDS``; the types of pools that are not live are *held*:
admission passes over their jobs (``statements.READY_ORDER``), which wait with a reason.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs.engine import wakeup
from jobs.errors import JobConflict
from jobs.models import Priority
from jobs.pools.models import WorkerPool, WorkerToken, hash_key
from jobs.types import registry, remote

#: Every worker key starts with this, so any API can tell one from a user's token.
KEY_PREFIX = "dwk_"
POOL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def pool_token_create(*, pool: str) -> str:
    """A new worker token for ``pool`` (created if new); the key is returned once, only its
    hash is kept."""
    if not POOL_NAME.match(pool):
        raise ValueError(
            "a pool name is 1-63 of a-z, 0-9, _ and -, starting with a letter or digit"
        )
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        row, _ = WorkerPool.objects.get_or_create(name=pool)
        WorkerToken.objects.create(pool=row, key_hash=hash_key(key))
    return key


def pool_for_key(key: str) -> WorkerPool | None:
    """The pool a live (unrevoked) worker key belongs to, or None."""
    token = (
        WorkerToken.objects.select_related("pool")
        .filter(key_hash=hash_key(key), revoked_at__isnull=True)
        .first()
    )
    return None if token is None else token.pool


def pool_tokens_revoke(*, pool: str, key: str | None = None) -> int:
    """Revoke the live worker tokens of ``pool`` (only the one whose key is ``key``, if given):
    from the next call on the worker API refuses them (401). Returns how many it revoked."""
    tokens = WorkerToken.objects.filter(pool__name=pool, revoked_at__isnull=True)
    if key is not None:
        tokens = tokens.filter(key_hash=hash_key(key))
    return tokens.update(revoked_at=timezone.now())


def pool_queues(pool: str) -> list[str]:
    """The Celery queues of a pool, highest priority first: ``<pool>.critical`` ..."""
    return [f"{pool}.{p.label}" for p in sorted(Priority, key=int)]


@dataclass(frozen=True)
class Registration:
    pool: str
    queues: list[str]


def pool_register(
    *, pool: WorkerPool, worker: str, concurrency: int, types: Sequence[dict[str, Any]]
) -> Registration:
    """Record a worker of ``pool`` and the types it serves. Raises JobConflict naming the
    types another pool or the deployment itself serves."""
    names = [str(t["name"]) for t in types]
    builtin = [n for n in names if registry.is_local(n)]
    if builtin:
        raise JobConflict(f"types built into Draconic cannot be served by a pool: {builtin}")
    with transaction.atomic():
        # Every pool's row, locked in id order: two pools registering the same type at once
        # are serialised (one gets the type, the other a 409), and cannot deadlock.
        rows = {p.id: p for p in WorkerPool.objects.select_for_update().order_by("id")}
        others = [p for pid, p in rows.items() if pid != pool.id]
        taken = sorted({n for other in others for n in other.type_names()} & set(names))
        if taken:
            raise JobConflict(f"types already served by another pool: {', '.join(taken)}")
        row = rows[pool.id]
        was_live = is_live(row)
        row.types = list(types)
        _seen(row, worker, concurrency)
        row.save(update_fields=["types", "workers", "concurrency", "last_seen"])
        if not was_live:
            transaction.on_commit(wakeup.request_dispatch)  # its held jobs may start now
    _forget_routes()
    for description in types:  # this process sees them at once (others read the rows)
        remote.register_remote(description, row.name)
    return Registration(pool=row.name, queues=pool_queues(row.name))


def pool_heartbeat(*, pool: WorkerPool, worker: str) -> None:
    """A worker of ``pool`` is up (it sends this while idle, between lease renewals)."""
    with transaction.atomic():
        row = WorkerPool.objects.select_for_update().get(id=pool.id)
        was_live = is_live(row)
        known = row.workers.get(worker, {})
        _seen(row, worker, int(known.get("concurrency", 1)))
        row.save(update_fields=["workers", "concurrency", "last_seen"])
        if not was_live:
            transaction.on_commit(wakeup.request_dispatch)


def pool_touch(*, pool: WorkerPool) -> None:
    """A lease renewal was heard from a worker of ``pool``: it is live."""
    WorkerPool.objects.filter(id=pool.id).update(last_seen=timezone.now())


def _seen(row: WorkerPool, worker: str, concurrency: int) -> None:
    now = time.time()
    horizon = now - settings.DRACONIC_POOL_LIVE_SECONDS
    workers = {n: w for n, w in row.workers.items() if float(w.get("last_seen", 0)) >= horizon}
    workers[worker] = {"concurrency": concurrency, "last_seen": now}
    row.workers = workers
    row.concurrency = sum(int(w["concurrency"]) for w in workers.values())
    row.last_seen = timezone.now()


def is_live(pool: WorkerPool) -> bool:
    return pool.served


def live_workers(pool: WorkerPool) -> list[str]:
    horizon = time.time() - settings.DRACONIC_POOL_LIVE_SECONDS
    return sorted(n for n, w in pool.workers.items() if float(w.get("last_seen", 0)) >= horizon)


def unserved_types() -> dict[str, str]:
    """The types registered by a pool that is not live: type -> its pool's name. Their jobs
    wait; admission does not look at them."""
    return {n: p.name for p in WorkerPool.objects.all() if not is_live(p) for n in p.type_names()}


def held_types() -> list[str]:
    return sorted(unserved_types())


_routes: dict[str, str] = {}
_routes_lock = threading.Lock()


def route(job_type: str) -> str | None:
    """The pool whose queues get ``job_type``'s jobs; None for a type of the deployment's."""
    if registry.is_local(job_type):
        return None
    pool = _routes.get(job_type)
    if pool is None:
        _load_routes()
        pool = _routes.get(job_type)
    return pool


def queue_for(job_type: str, priority: int) -> str:
    """The Celery queue an attempt of ``job_type`` at ``priority`` is published to."""
    label = str(Priority(priority).label)
    pool = route(job_type)
    return label if pool is None else f"{pool}.{label}"


def _load_routes() -> None:
    fresh = {n: p.name for p in WorkerPool.objects.all() for n in p.type_names()}
    with _routes_lock:
        _routes.clear()
        _routes.update(fresh)


def _forget_routes() -> None:
    with _routes_lock:
        _routes.clear()


def pools_overview() -> dict[str, Any]:
    """Every pool (live or not, its live workers, its types) and the types no live pool
    serves, for ``GET /admin/health`` and the dashboard."""
    rows = list(WorkerPool.objects.all())
    pools: list[dict[str, Any]] = [
        {
            "name": p.name,
            "live": is_live(p),
            "last_seen": p.last_seen.isoformat() if p.last_seen else None,
            "workers": live_workers(p),
            "concurrency": p.concurrency if is_live(p) else 0,
            "types": p.type_names(),
        }
        for p in rows
    ]
    unserved = {n: p["name"] for p in pools if not p["live"] for n in p["types"]}
    return {"pools": pools, "unserved_types": dict(sorted(unserved.items()))}
