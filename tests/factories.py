"""Factories for jobs in the database (a pytest plugin: fixtures ``job_factory``), and the
helpers the API tests share (``dead_letter``, ``row_counts``)."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.lifecycle import job_dead_letter
from jobs.models import DeadLetterReason, ExecutionLog, Job, JobDependency, JobStatus, Priority
from jobs.services import JobSpec, job_submit


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


def row_counts() -> tuple[int, int, int]:
    """Jobs, dependencies and log rows: a refused request must leave all three unchanged."""
    return Job.objects.count(), JobDependency.objects.count(), ExecutionLog.objects.count()


def dead_letter(job: Job, error: str = "boom") -> None:
    """Move a pending ``job`` to the dead-letter queue through the real service."""
    assert job_dead_letter(
        job_id=job.id,
        attempt=None,
        from_=[JobStatus.PENDING],
        reason=DeadLetterReason.MAX_ATTEMPTS,
        error=error,
    )


__all__ = ["Job", "JobDependency", "dead_letter", "job_factory", "make_spec", "row_counts"]
