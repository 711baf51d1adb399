"""The bridged job types of ``tests.e2e.djt_tasks``, served by the platform's own workers
(``DRACONIC_HANDLER_MODULES=tests.e2e.djt_handlers``).

A stand-in, for these tests, for the two pieces other branches build: the server's registry
of ``JobType`` objects and the external pool runtime. The types come from the same sources
the runtime discovers (``draconic_sdk.bridging.job_types_of``), are validated by
``JobType.validate`` and run by ``JobType.run`` with a context shaped like the runtime's
(``job_id``, ``attempt``, ``payload``, ``log``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import draconic_sdk.celery_bridge
import draconic_sdk.django_tasks  # noqa: F401  # registers its source
from draconic_sdk import bridging
from draconic_sdk.jobtypes import JobType
from jobs.types import Handler, JobContext, register
from tests.e2e import djt_tasks


class PoolContext:
    """What ``draconic_sdk.worker.context.JobContext`` gives a job type's body."""

    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx
        self.job_id = str(ctx.job.id)
        self.attempt = ctx.attempt
        self.payload = ctx.payload

    def log(self, message: str, level: str = "info", **context: Any) -> None:
        self._ctx.log(message, level=level, **context)

    def cancel_requested(self) -> bool:
        return self._ctx.cancel_requested()


def _handler(job_type: JobType) -> type[Handler]:
    class Bridged(Handler):
        def validate_payload(self, payload: Mapping[str, Any]) -> dict[str, str]:
            return job_type.validate(dict(payload))

        def run(self, ctx: JobContext) -> Any:
            return job_type.run(PoolContext(ctx), ctx.payload)

    Bridged.__name__ = Bridged.__qualname__ = f"Bridged_{job_type.name.rsplit('.', 1)[-1]}"
    return Bridged


def _register_all() -> None:
    # In a function: a JobType left at the module's top level would be registered a second
    # time by the registry, which registers every top-level JobType of a listed module.
    for job_type in bridging.job_types_of(djt_tasks):
        register(job_type.name)(_handler(job_type))


_register_all()
