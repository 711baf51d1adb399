"""Worker liveness through Redis, without a blocking Celery broadcast.

Each worker's main process runs a daemon thread (started on ``worker_ready``) that every
``DRACONIC_WORKER_HEARTBEAT_SECONDS`` writes ``SET <prefix>:workers:<hostname> <json> EX ttl``
and records ``hostname -> expiry`` in the sorted set ``<prefix>:workers``. The set is an index,
so readers never ``SCAN`` the keyspace; the per-worker key with its expiry is the truth: a
worker counts as alive while its key exists. A graceful shutdown deletes both at once; a killed
worker disappears when its key expires (``ttl`` seconds at most).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, cast

import redis
from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.utils import timezone

from jobs.redis_client import get_redis, key
from jobs.types import registered_types
from jobs.types.registry import loaded_modules

logger = logging.getLogger("draconic.worker.heartbeat")

#: How many workers a reader looks at, at most (bounds the cost of a health check).
MAX_WORKERS = 1000
#: How long a worker that stopped beating is still listed (the console's "last seen").
SEEN_SECONDS = 24 * 3600


@dataclass(frozen=True)
class WorkerBeat:
    hostname: str
    info: dict[str, Any]


def _index_key() -> str:
    return key("workers")


def _worker_key(hostname: str) -> str:
    return key("workers", hostname)


def beat_once(hostname: str, info: dict[str, Any], *, ttl: float | None = None) -> None:
    """Record that ``hostname`` is alive for ``ttl`` seconds (default: the setting)."""
    ttl = ttl if ttl is not None else settings.DRACONIC_WORKER_HEARTBEAT_TTL
    body = json.dumps({**info, "hostname": hostname, "beat_at": timezone.now().isoformat()})
    pipe = get_redis().pipeline(transaction=True)
    pipe.set(_worker_key(hostname), body, ex=max(1, int(ttl)))
    pipe.zadd(_index_key(), {hostname: time.time() + ttl})
    pipe.hset(_seen_key(), hostname, time.time())
    pipe.execute()


def _seen_key() -> str:
    return key("workers", "seen")


def last_seen() -> dict[str, float]:
    """When each worker beat last (epoch seconds), alive or not, for the last
    ``SEEN_SECONDS``; older entries are dropped here. One or two Redis round trips."""
    client = get_redis()
    raw = cast("dict[bytes, bytes]", client.hgetall(_seen_key()))
    seen = {name.decode(): float(at) for name, at in raw.items()}
    stale = [name for name, at in seen.items() if at < time.time() - SEEN_SECONDS]
    if stale:
        client.hdel(_seen_key(), *stale)
    return {name: at for name, at in seen.items() if name not in stale}


def forget(hostname: str) -> None:
    """Remove a worker at once (graceful shutdown)."""
    pipe = get_redis().pipeline(transaction=True)
    pipe.delete(_worker_key(hostname))
    pipe.zrem(_index_key(), hostname)
    pipe.execute()


def alive_workers() -> list[WorkerBeat]:
    """The workers whose heartbeat has not expired, by hostname. Two Redis round trips."""
    client = get_redis()
    client.zremrangebyscore(_index_key(), "-inf", time.time())
    # The client does not decode responses: the members are bytes.
    members = cast("list[bytes]", client.zrange(_index_key(), 0, MAX_WORKERS - 1))
    names = [n.decode() for n in members]
    if not names:
        return []
    bodies = client.mget([_worker_key(n) for n in names])
    beats = []
    for name, body in zip(names, bodies, strict=True):
        if body is not None:
            beats.append(WorkerBeat(hostname=name, info=json.loads(body)))
    return sorted(beats, key=lambda b: b.hostname)


class LivenessBeat(threading.Thread):
    """The thread of one worker's main process that says it is alive; ``stop()`` ends it and
    forgets the worker. (Not the lease keeper of ``workers.runner``, which renews leases.)"""

    def __init__(self, hostname: str, info: dict[str, Any]) -> None:
        super().__init__(name="draconic-liveness", daemon=True)
        self.hostname = hostname
        self.info = info
        self._stopped = threading.Event()

    def run(self) -> None:
        interval = settings.DRACONIC_WORKER_HEARTBEAT_SECONDS
        while not self._stopped.is_set():
            try:
                beat_once(self.hostname, self.info)
            except redis.RedisError:  # Redis down: the worker is reported dead, and says why
                logger.warning("heartbeat of %s failed", self.hostname, exc_info=True)
            self._stopped.wait(interval)

    def mark_quiet(self) -> None:
        """The worker stopped consuming (``workers.control``): say so from now on, at once."""
        self.info = {**self.info, "quiet": True}
        try:
            beat_once(self.hostname, self.info)
        except redis.RedisError:
            logger.warning("heartbeat of %s failed", self.hostname, exc_info=True)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped.set()
        # A beat under way when the event was set would write the key back after ``forget``
        # (alive for a whole ttl after the worker exited): let it finish first.
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)
        try:
            forget(self.hostname)
        except redis.RedisError:
            logger.warning("could not remove the heartbeat of %s", self.hostname, exc_info=True)


_current: LivenessBeat | None = None


def current() -> LivenessBeat | None:
    """This worker process's liveness beat, once it is ready."""
    return _current


def _describe(consumer: Any) -> dict[str, Any]:
    """What a heartbeat tells about the worker: pid, queues, pool size, start time, and the
    job types it runs (the health check compares its ``handler_modules`` with the API's)."""
    try:
        queues = sorted(q.name for q in consumer.task_consumer.queues or ())
    except (AttributeError, TypeError):
        queues = []
    controller = getattr(consumer, "controller", None)
    return {
        "pid": os.getpid(),
        "queues": queues,
        "concurrency": getattr(controller, "concurrency", None),
        "started_at": timezone.now().isoformat(),
        "handler_modules": loaded_modules(),
        "job_types": registered_types(),
    }


@worker_ready.connect
def _start_heartbeat(sender: Any = None, **_: Any) -> None:
    """``sender`` is the worker's consumer (it runs in the worker's main process)."""
    global _current  # one liveness beat per worker process
    _current = LivenessBeat(str(getattr(sender, "hostname", "") or "unknown"), _describe(sender))
    _current.start()


@worker_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    if _current is not None:
        _current.stop()
