"""Factories for jobs in the database (a pytest plugin: fixtures ``job_factory``)."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.models import Job, JobDependency, Priority
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


__all__ = ["Job", "JobDependency", "job_factory", "make_spec"]
