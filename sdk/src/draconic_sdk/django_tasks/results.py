"""A Draconic job read back as a django.tasks ``TaskResult``: pure functions of what
``GET /jobs/{id}`` and ``GET /jobs/{id}/logs`` answer.

Each attempt's start is a log line into ``running`` whose context names its worker (one
``worker_ids`` entry per attempt); each failed attempt is a line from ``running`` into
``retrying`` or ``failed`` whose context carries the whole error and traceback (one
``errors`` entry per failed attempt, its exception class path read from the traceback's last
line). An attempt that ended without a Python exception of its own (a timeout, a lost worker)
is named by ``AttemptTimedOut`` / ``AttemptLost``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from draconic_sdk.django_tasks.compat import Task, TaskError, TaskResult, TaskResultStatus
from draconic_sdk.models import Job, LogEntry

STATUSES = {
    "pending": TaskResultStatus.READY,
    "queued": TaskResultStatus.READY,
    "retrying": TaskResultStatus.READY,
    "running": TaskResultStatus.RUNNING,
    "completed": TaskResultStatus.SUCCESSFUL,
    "failed": TaskResultStatus.FAILED,
    "cancelled": TaskResultStatus.FAILED,
}
_CLASS = re.compile(r"^[A-Za-z_][\w.]*$")


class AttemptTimedOut(Exception):  # named as the outcome it reports
    """An attempt ran past the job's ``timeout_seconds``."""


class AttemptLost(Exception):
    """An attempt ended without an exception of its own (its worker was lost, or it was
    stopped); the message is Draconic's."""


def task_result(*, task: Task[Any, Any], job: Job, logs: Sequence[LogEntry], backend: str) -> Any:
    """The ``TaskResult`` of ``job`` (run as ``task``), from its log lines, oldest first."""
    status = STATUSES[job.status]
    starts = [line for line in logs if line.to_status == "running"]
    finished = status in (TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED)
    result: Any = TaskResult(
        task=task,
        id=job.id,
        status=status,
        enqueued_at=job.created_at,
        started_at=starts[0].created_at if starts else job.started_at,
        finished_at=_finished_at(job, logs) if finished else None,
        last_attempted_at=starts[-1].created_at if starts else job.started_at,
        args=[],
        kwargs=dict(job.payload),
        backend=backend,
        errors=[error_of(line) for line in logs if _failed_attempt(line)],
        worker_ids=[str(line.context.get("worker") or "") for line in starts],
    )
    if status == TaskResultStatus.SUCCESSFUL:
        object.__setattr__(result, "_return_value", job.result)
    return result


def _failed_attempt(line: LogEntry) -> bool:
    return line.from_status == "running" and line.to_status in ("retrying", "failed")


def _finished_at(job: Job, logs: Sequence[LogEntry]) -> datetime | None:
    return job.completed_at or (logs[-1].created_at if logs else job.updated_at)


def error_of(line: LogEntry) -> TaskError:
    """The ``TaskError`` of a failed attempt's log line."""
    trace = str(line.context.get("traceback") or "")
    error = str(line.context.get("error") or line.message)
    return TaskError(
        exception_class_path=exception_class_path(trace, line.context.get("reason")),
        traceback=trace or error,
    )


def exception_class_path(trace: str, reason: Any = None) -> str:
    """The dotted path of the exception a traceback ends with (``builtins.`` for Python's
    own); without a traceback, the class naming Draconic's reason."""
    lines = [line for line in trace.strip().splitlines() if line.strip()]
    if lines:
        head = lines[-1].split(":", 1)[0].strip()
        if _CLASS.match(head):
            return head if "." in head else f"builtins.{head}"
    cls = AttemptTimedOut if reason == "timeout" else AttemptLost
    return f"{cls.__module__}.{cls.__qualname__}"
