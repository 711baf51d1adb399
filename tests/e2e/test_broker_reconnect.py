"""A worker survives Redis restarts: kombu 5.7's reconnect crash
(``'NoneType' object has no attribute 'hostname'``, see draconic/broker.py) does not happen.

Both tests run a redis-server of their own, which they kill. The crash needs the worker to
notice the loss on its broadcast (pub/sub) connection before its BRPOP connection, while an
attempt runs and a slot is free. Which socket the event loop reads first is up to the kernel:
a plain kill did not reproduce it here in about 100 restarts (the chaos run met it now and
then). The tests fix the order: they drop the pub/sub clients (``CLIENT KILL TYPE pubsub``)
just before killing the server.
Without the guard, the worker test fails on its first restart, and the kombu test with the
``AttributeError`` itself.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Exchange, Queue
from kombu.common import ignore_errors

import draconic.celery  # noqa: F401  (installs the guard, as every platform process does)
from jobs.models import Job, JobStatus
from jobs.redis_client import get_redis
from tests.chaos.services import RedisServer
from tests.e2e.test_scheduling import submit, wait_terminal
from tests.harness import free_port, wait_until

pytestmark = pytest.mark.e2e
RESTARTS = 3


@pytest.fixture
def dedicated_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, which it may kill at will."""
    server = RedisServer(tmp_path, free_port())
    server.start()
    yield server
    server.kill()


def restart_pubsub_first(server: RedisServer) -> None:
    """Restart Redis so that its clients see the pub/sub connections go first."""
    server.client().client_kill_filter(_type="pubsub")
    server.kill()
    server.start()


def wait_running(job_id: str, platform: Any) -> None:
    wait_until(
        lambda: Job.objects.filter(id=job_id, status=JobStatus.RUNNING).exists(),
        message=platform.logs(),
    )


def test_a_worker_keeps_its_pid_and_runs_jobs_across_redis_restarts(
    platform, api, settings, dedicated_redis
):
    url = f"redis://127.0.0.1:{dedicated_redis.port}/0"
    settings.REDIS_URL = settings.CELERY_BROKER_URL = url
    get_redis.cache_clear()
    env = {"REDIS_URL": url, "CELERY_BROKER_URL": url, "DRACONIC_REQUEUE_AFTER_SECONDS": "3"}
    try:
        worker = platform.start_worker(concurrency=2, heartbeat=True, **env)
        platform.start_scheduler(**env)
        done: list[str] = []
        for _ in range(RESTARTS):
            # One attempt running (acks_late, unacknowledged), one slot free (a BRPOP waiting).
            running = submit(api, type="noop", payload={"seconds": 2})["id"]
            wait_running(running, platform)
            restart_pubsub_first(dedicated_redis)
            get_redis().connection_pool.disconnect()
            after = submit(api, type="noop")["id"]
            jobs = wait_terminal([running, after], platform, timeout=180)
            assert {j.status for j in jobs} == {JobStatus.COMPLETED}, platform.logs()
            assert worker.poll() is None, platform.log_tail("worker", 8000)
            done += [running, after]
        assert platform.pid("worker") == worker.pid
        assert "Unrecoverable error" not in platform.log_tail("worker", 10**7)
        assert Job.objects.filter(id__in=done, worker__startswith="worker@").count() == len(done)
    finally:
        get_redis.cache_clear()


def test_closing_a_connection_collected_while_redis_was_down_raises_no_attribute_error(
    dedicated_redis, caplog
):
    """Celery 5.7's teardown of a lost connection, step by step, on kombu itself."""
    url = f"redis://127.0.0.1:{dedicated_redis.port}/0"
    tasks = Queue("guard-tasks")
    control = Queue("guard.pidbox", Exchange("guard.pidbox", "fanout"), auto_delete=True)
    with Connection(url) as publisher:
        publisher.Producer().publish({"n": 1}, routing_key=tasks.name, declare=[tasks])
    connection = Connection(url)
    received: list[Any] = []
    channel = connection.default_channel
    consumer = connection.Consumer([tasks], channel=channel, callbacks=[_keep(received)])
    consumer.qos(prefetch_count=2)
    consumer.consume()
    connection.Consumer([control], channel=connection.channel(), no_ack=True).consume()
    wait_until(lambda: _drain(connection) or received, timeout=30, message="the task message")
    channel.connection.cycle._register_BRPOP(channel)  # the free slot's BRPOP, as in a worker
    assert len(received) == 1 and channel._in_poll

    dedicated_redis.kill()
    connection.collect(socket_timeout=5)  # what Celery does first ...
    ignore_errors(connection, connection.close)  # ... then (new in 5.7): crashed here
    dedicated_redis.start()
    with caplog.at_level(logging.CRITICAL, logger="kombu.test"):
        received[0].ack_log_error(logging.getLogger("kombu.test"), connection.connection_errors)
    assert "Couldn't ack" in caplog.text  # a late ack on the lost channel is an error logged


def _drain(connection: Connection) -> None:
    """Handle one event (a delivery, or the broadcast subscription's confirmation)."""
    with contextlib.suppress(socket.timeout):
        connection.drain_events(timeout=1)


def _keep(received: list[Any]) -> Any:
    return lambda body, message: received.append(message)
