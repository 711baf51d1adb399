"""Job types written as functions (``draconic_sdk.job_type``), run by the built-in workers.

The registry keeps one ``Handler`` class per type name, whatever the type was written as:
``handler_class_for`` makes a ``FunctionHandler`` subclass that carries a ``JobType``'s schema,
defaults and retry policy, so the serializers, the runner and the engine ask every type the
same questions (``validate_payload``, ``run``, ``is_permanent``, ``defaults``, ``retry``).
Inside the built-in worker a function's ``ctx`` is ``jobs.types.JobContext``; its payload
fields arrive as keyword arguments, already checked against the schema at submit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from draconic_sdk.jobtypes import JobType
from jobs.types.defaults import defaults_problems
from jobs.types.handler import Handler, JobContext


class FunctionHandler(Handler):
    """A ``@job_type`` function as a handler; ``handler_class_for`` makes one per type."""

    job_type: ClassVar[JobType]

    def validate_payload(self, payload: Mapping[str, Any]) -> dict[str, str]:
        return self.job_type.validate(dict(payload))

    def run(self, ctx: JobContext) -> Any:
        return self.job_type.run(ctx, ctx.payload)


def handler_class_for(job_type: JobType) -> type[Handler]:
    """A ``FunctionHandler`` subclass running ``job_type``. Raises ValueError when its
    defaults are outside the server's bounds (a type must not default to what a job body
    could not ask for)."""
    problems = defaults_problems(job_type.defaults.describe())
    if problems:
        raise ValueError(f"job type {job_type.name!r}: " + "; ".join(problems))
    attributes: dict[str, Any] = {
        "__doc__": job_type.description,
        "__module__": getattr(job_type.fn, "__module__", __name__),
        "job_type": job_type,
        "payload_schema": job_type.schema,
        "defaults": job_type.defaults,
        "retry": job_type.retry,
    }
    return type(f"JobType[{job_type.name}]", (FunctionHandler,), attributes)
