"""Factories for jobs in the database (a pytest plugin: fixtures ``job_factory``), and the
helpers the API tests share (``dead_letter``, ``row_counts``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from django.db import connection

from jobs.api.submit import JobSpec, job_submit
from jobs.engine import transitions
from jobs.engine.deadletter import job_dead_letter, job_dead_letter_waiting
from jobs.models import DeadLetterReason, ExecutionLog, Job, JobDependency, JobStatus, Priority


def make_spec(**overrides: Any) -> JobSpec:
    values: dict[str, Any] = {
        "type": "noop",
        "priority": Priority.NORMAL,
        "payload": {},
        "cpu_units": 1,
        "memory_mb": 128,
        "max_attempts": 3,
        "timeout_seconds": 60,
        "depends_on": [],
    }
    values.update(overrides)
    if isinstance(values["priority"], str):
        values["priority"] = Priority.by_name(values["priority"])
    values["depends_on"] = [str(getattr(d, "id", d)) for d in values["depends_on"]]
    return JobSpec(**values)


@pytest.fixture
def job_factory(user: Any) -> Any:
    """``job_factory(owner=None, **spec)`` submits a job through the real service."""

    def make(owner: Any = None, **overrides: Any) -> Job:
        job, _ = job_submit(owner=owner or user, spec=make_spec(**overrides))
        return job

    return make


def move_to(job: Job, status: JobStatus, *, result: Any = None) -> Job:
    """Set-up: walk a pending or queued job on to ``status`` through the engine's real moves
    (admitted, started, then completed, retried, dead-lettered or cancelled). Returns it
    fresh."""
    job = Job.objects.get(id=job.id)
    if status == JobStatus.CANCELLED:
        assert transitions.cancel_waiting(job_id=job.id, attempt=job.attempt, message="test set-up")
        return Job.objects.get(id=job.id)
    if job.status == JobStatus.PENDING and status != JobStatus.PENDING:
        assert transitions.admit_jobs(job_ids=[job.id])
        job = Job.objects.get(id=job.id)
    ran = (JobStatus.RUNNING, JobStatus.RETRYING, JobStatus.COMPLETED, JobStatus.FAILED)
    if status in ran:
        assert transitions.start_attempt(job_id=job.id, attempt=job.attempt, worker="test")
    if status == JobStatus.COMPLETED:
        assert transitions.complete_attempt(job_id=job.id, attempt=job.attempt, result=result)
    elif status == JobStatus.FAILED:
        reason = DeadLetterReason.MAX_ATTEMPTS
        assert job_dead_letter(job_id=job.id, attempt=job.attempt, reason=reason, error="boom")
    elif status == JobStatus.RETRYING:
        assert transitions.retry_attempt(
            job_id=job.id,
            attempt=job.attempt,
            error="boom",
            next_attempt_at=job.created_at,
            message="test set-up",
            context={},
        )
    return Job.objects.get(id=job.id)


def db_now() -> datetime:
    """PostgreSQL's ``now()``: the clock the engine's statements compare due times with (and
    the metrics their windows). In a test that runs in a transaction (``django_db`` without
    ``transaction=True``) it is that transaction's start, which on a loaded machine can be
    seconds before ``timezone.now()``: a time meant to be just due, or a wait meant to be
    exact, is counted from it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        (now,) = cursor.fetchone()
    return now  # type: ignore[no-any-return]


def row_counts() -> tuple[int, int, int]:
    """Jobs, dependencies and log rows: a refused request must leave all three unchanged."""
    return Job.objects.count(), JobDependency.objects.count(), ExecutionLog.objects.count()


def dead_letter(job: Job, error: str = "boom") -> None:
    """Move a pending ``job`` to the dead-letter queue through the real service."""
    assert job_dead_letter_waiting(job_id=job.id, reason=DeadLetterReason.MAX_ATTEMPTS, error=error)


__all__ = [
    "Job",
    "JobDependency",
    "db_now",
    "dead_letter",
    "job_factory",
    "make_spec",
    "move_to",
    "row_counts",
]
