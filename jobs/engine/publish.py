"""Publishing admitted attempts to Celery: one ``draconic.execute_job`` message per attempt,
on the queue named after its priority (``<pool>.<priority>`` for a type an external worker
pool serves, ``jobs.pools.services.queue_for``), with the job's time limits."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from django.conf import settings

from jobs.pools.services import queue_for

logger = logging.getLogger("draconic.dispatcher")


@dataclass(frozen=True)
class Delivery:
    """What the message of one admitted attempt carries."""

    job_id: UUID
    attempt: int
    priority: int
    timeout_seconds: int
    type: str


def monitoring_name(job_type: str) -> str:
    """The name an attempt shows under in Flower and Celery's events (its job type): every
    attempt runs the one task ``draconic.execute_job``, published with this as its shadow."""
    return f"draconic.{job_type}"


def celery_task_id(job_id: UUID | str, attempt: int) -> str:
    """Deterministic, so the scheduler can revoke exactly one attempt of a job."""
    return f"{job_id}:{attempt}"


def publish(deliveries: Sequence[Delivery]) -> None:
    """Send each delivery, in order. A failure leaves the jobs queued; the scheduler
    re-publishes queued jobs that do not start."""
    from draconic.celery import app

    grace = settings.DRACONIC_TIMEOUT_GRACE_SECONDS
    try:
        # kombu's publish batch: every message of the pass in one Redis pipeline (one round
        # trip) instead of a round trip each; transports without it publish one by one.
        with app.producer_or_acquire() as producer, producer.batch():
            for d in deliveries:
                app.send_task(
                    "draconic.execute_job",
                    args=[str(d.job_id), d.attempt],
                    task_id=celery_task_id(d.job_id, d.attempt),
                    queue=queue_for(d.type, d.priority),
                    soft_time_limit=d.timeout_seconds,
                    time_limit=d.timeout_seconds + grace,
                    shadow=monitoring_name(d.type),
                    producer=producer,
                )
    except Exception:
        logger.exception(
            "could not publish %d jobs; the scheduler will re-publish them", len(deliveries)
        )
