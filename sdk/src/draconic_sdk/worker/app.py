"""The pool's Celery app and the worker's life: register the pool (its types, its
concurrency) through the worker API, then consume the queues the server answered with, while
a thread beats so the pool stays live when idle. A SIGTERM lets the running attempts finish
within ``shutdown_grace`` and hands back the rest (``draconic_sdk.worker.shutdown``).

The app consumes what the server's dispatcher publishes: the task ``draconic.execute_job
(job_id, attempt)`` with the job's time limits, on ``<pool>.critical`` ... ``<pool>.low``
(consumed in that order, Redis ``queue_order_strategy: priority``, the broker options the
server gave), with ``task_acks_late`` and ``worker_prefetch_multiplier=1``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from celery.signals import worker_process_init
from kombu import Exchange, Queue

from draconic_sdk.worker import discover
from draconic_sdk.worker.api import WorkerApi
from draconic_sdk.worker.runtime import Runtime, run_attempt
from draconic_sdk.worker.shutdown import GracefulStop

logger = logging.getLogger("draconic_sdk.worker")


@dataclass
class WorkerConfig:
    """Where the server and the broker are, the pool, and where the job types are."""

    url: str
    token: str
    broker_url: str
    pool: str
    modules: list[str]
    concurrency: int = 2
    #: Seconds a stopping worker lets its running attempts finish before handing them back.
    shutdown_grace: float = 30.0
    name: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    celery_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> WorkerConfig:
        """From ``settings.DRACONIC`` (keys URL, WORKER_TOKEN, BROKER_URL, POOL, APPS, ...)."""
        missing = [
            k for k in ("URL", "WORKER_TOKEN", "BROKER_URL", "POOL", "APPS") if not values.get(k)
        ]
        if missing:
            raise ValueError(f"settings.DRACONIC lacks {', '.join(missing)}")
        extra = {k: values[k] for k in ("CONCURRENCY", "NAME") if values.get(k)}
        grace = values.get("SHUTDOWN_GRACE_SECONDS")
        return cls(
            url=values["URL"],
            token=values["WORKER_TOKEN"],
            broker_url=values["BROKER_URL"],
            pool=values["POOL"],
            modules=list(values["APPS"]),
            concurrency=int(extra.get("CONCURRENCY", 2)),
            shutdown_grace=30.0 if grace is None else float(grace),
            name=str(extra.get("NAME") or f"{socket.gethostname()}-{os.getpid()}"),
        )


def build_app(config: WorkerConfig, registration: dict[str, Any], runtime: Runtime) -> Celery:
    app = Celery(f"draconic-pool-{config.pool}", broker=config.broker_url)
    # Each queue its own direct exchange: nothing else is bound to it.
    queues = [Queue(name, Exchange(name), routing_key=name) for name in registration["queues"]]
    app.conf.update(
        task_queues=queues,
        task_default_queue=queues[0].name,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        broker_transport_options=registration.get("broker_transport_options") or {},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        **config.celery_options,
    )

    @app.task(name="draconic.execute_job", bind=True, acks_late=True, ignore_result=True)
    def execute_job(self: Any, job_id: str, attempt: int) -> str:
        summary = run_attempt(runtime, str(job_id), int(attempt))
        logger.info("attempt %s of %s: %s", attempt, job_id, summary)
        return summary

    return app


def _beat(api: WorkerApi, config: WorkerConfig, every: float, stop: threading.Event) -> None:
    while not stop.wait(every):
        try:
            api.heartbeat(pool=config.pool, worker=config.name)
        except Exception:
            logger.warning("heartbeat failed; the next one may pass", exc_info=True)


def run_worker(config: WorkerConfig, *, argv: list[str] | None = None) -> None:
    """Register the pool and run its Celery worker until it is stopped."""
    if not logging.getLogger().handlers:  # a project that configured logging keeps its own
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
    try:
        types = discover(config.modules)
    except (ValueError, TypeError) as exc:  # a type that cannot run here: say why and stop
        raise SystemExit(f"the worker cannot start: {exc}") from exc
    if not types:
        raise SystemExit(f"no job types found in {', '.join(config.modules)}")
    api = WorkerApi(config.url, config.token)
    registration = api.register(
        pool=config.pool,
        worker=config.name,
        concurrency=config.concurrency,
        types=[t.describe() for t in types],
    )
    logger.info(
        "pool %s registered %d types; queues %s", config.pool, len(types), registration["queues"]
    )
    runtime = Runtime(api=api, types={t.name: t for t in types}, worker=config.name)
    app = build_app(config, registration, runtime)
    worker_process_init.connect(lambda **_: api.reset(), weak=False)  # a fork's own client
    GracefulStop(api, worker=config.name, grace=config.shutdown_grace).connect()
    stop = threading.Event()
    every = float(registration.get("heartbeat_seconds", 15))
    threading.Thread(target=_beat, args=(api, config, every, stop), daemon=True).start()
    options = ["worker", "-Q", ",".join(registration["queues"]), "-c", str(config.concurrency)]
    options += ["-n", f"{config.name}@%h", "--without-gossip", "--without-mingle", "-l", "INFO"]
    try:
        app.worker_main(argv=[*options, *(argv or [])])
    finally:
        stop.set()
