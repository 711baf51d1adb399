"""Celery signal receivers: they only log. State changes happen in ``workers.runner``, where a
stale delivery can be refused before the handler runs; Celery's Django fix-up already closes
stale database connections around each task and after a fork."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import celeryd_init, task_failure, worker_process_init

from draconic.processes import use_persistent_db_connections
from workers import lifecycle, liveness  # noqa: F401  (connect the lifecycle receivers)

logger = logging.getLogger("draconic.worker")


@celeryd_init.connect
def _persistent_connections(**_: Any) -> None:
    use_persistent_db_connections()


@worker_process_init.connect
def _start_lease_keeper(**_: Any) -> None:
    # Subscribed to cancel requests before the pool process takes its first job.
    from workers.lease_keeper import keeper

    keeper.start()


@task_failure.connect
def _log_task_failure(
    task_id: str | None = None, exception: BaseException | None = None, args: Any = None, **_: Any
) -> None:
    # A failed attempt is recorded by the runner, then raised as AttemptFailed for Celery's
    # and Flower's sake. Anything else means the bookkeeping failed (PostgreSQL or Redis
    # unreachable); the scheduler's sweeps settle the job later.
    from workers.tasks import AttemptFailed

    if not isinstance(exception, AttemptFailed):
        logger.error("task %s %s failed outside its handler: %r", task_id, args, exception)
