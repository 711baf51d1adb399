"""Run a job's handler in this process, the way the worker does, and read what it logged."""

from __future__ import annotations

from typing import Any

from jobs.models import ExecutionLog, Job
from jobs.types import JobContext, get_handler


def run(job: Job, **context: Any) -> Any:
    """Run ``job``'s handler in this process, the way the worker does."""
    handler = get_handler(job.type)
    assert handler is not None
    return handler.run(JobContext(job, **context))


def messages(job: Job) -> list[str]:
    return list(
        ExecutionLog.objects.filter(job=job, to_status="").values_list("message", flat=True)
    )
