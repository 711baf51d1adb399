"""The raw Celery baseline: a no-op task on the same broker, with the worker settings the
platform ships (acks_late, reject on worker lost, prefetch 1, the four priority queues with
``queue_order_strategy: priority``, task events), and no Django.

Tasks report to the bench through Redis keys under ``bench:celery:`` in the same database:
``noop`` counts itself and stamps the time it finished; ``timed`` stores when it started and
ended, for the latency figures.

Run: ``celery -A bench.celery_baseline worker -Q critical,high,normal,low -c 2 ...``
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery
from kombu import Queue

QUEUES = ("critical", "high", "normal", "low")
PREFIX = "bench:celery"
BROKER_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/6")

app = Celery("bench_celery", broker=BROKER_URL)
app.conf.update(
    result_backend=None,
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue="normal",
    task_queues=[Queue(name) for name in QUEUES],
    broker_transport_options={"queue_order_strategy": "priority", "visibility_timeout": 90000},
    broker_connection_retry_on_startup=True,
    worker_send_task_events=True,
    task_send_sent_event=True,
    worker_hijack_root_logger=False,
)

_redis: redis.Redis | None = None


def client() -> redis.Redis:
    """One Redis client per process (created after the fork)."""
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(BROKER_URL)
    return _redis


@app.task(name="bench.noop")
def noop() -> None:
    """Does nothing, then counts itself (one pipelined round trip)."""
    pipe = client().pipeline(transaction=False)
    pipe.incr(f"{PREFIX}:done")
    pipe.set(f"{PREFIX}:last", repr(time.time()))
    pipe.execute()


@app.task(name="bench.timed")
def timed(index: int, sent: float = 0.0) -> None:
    """Records ``sent start end`` of this task under ``index`` (``sent`` 0 inside a chain)."""
    started = time.time()
    client().hset(f"{PREFIX}:timed", str(index), f"{sent!r} {started!r} {time.time()!r}")
