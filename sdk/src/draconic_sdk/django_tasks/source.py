"""A project's django.tasks ``@task`` functions as Draconic job types, for the worker runtime:
``job_types(module)`` is the source ``draconic_sdk.bridging.register_source`` registers.

A task's type is its function's dotted path, its payload schema comes from its signature
(without ``context`` when it takes one), its default level from its priority. Run, it gets
its arguments from the payload and, when it takes context, a ``TaskContext`` whose result
names the job and counts its attempts.
"""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any

from django.utils import timezone

from draconic_sdk import bridging
from draconic_sdk.django_tasks.compat import Task, TaskContext, TaskResult, TaskResultStatus
from draconic_sdk.jobtypes import Defaults, JobType, schema_from_signature


def job_types(module: ModuleType) -> list[JobType]:
    """The job types of the ``@task`` objects ``module`` defines (not those it imports)."""
    return [
        job_type_of(value)
        for value in vars(module).values()
        if isinstance(value, Task) and getattr(value.func, "__module__", None) == module.__name__
    ]


def job_type_of(task: Task[Any, Any]) -> JobType:
    shown = bridging.payload_function(task.func, skip_first=task.takes_context)

    def run(ctx: Any, **payload: Any) -> Any:
        if task.takes_context:
            return task.call(TaskContext(task_result=_running(task, ctx, payload)), **payload)
        return task.call(**payload)

    return JobType(
        name=task.module_path,
        fn=run,
        defaults=Defaults(priority=bridging.level_of(task.priority)),
        schema=schema_from_signature(shown),
        takes_context=True,
        description=inspect.getdoc(task.func) or "",
    )


def _running(task: Task[Any, Any], ctx: Any, payload: dict[str, Any]) -> Any:
    attempt = int(getattr(ctx, "attempt", 1) or 1)
    now = timezone.now()
    return TaskResult(
        task=task,
        id=str(getattr(ctx, "job_id", "")),
        status=TaskResultStatus.RUNNING,
        enqueued_at=None,
        started_at=now,
        finished_at=None,
        last_attempted_at=now,
        args=[],
        kwargs=payload,
        backend=task.backend,
        errors=[],
        # TaskContext.attempt counts worker_ids: one per attempt so far, this one included.
        worker_ids=[f"attempt-{n}" for n in range(1, attempt + 1)],
    )
