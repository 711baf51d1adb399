"""The shape every job handler has: validate its payload at submit, ``run(ctx)`` at execution."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from django.db import close_old_connections, connection

from draconic_sdk.jobtypes import Defaults, RetryPolicy
from jobs.models import ExecutionLog, Job, JobDependency, LogLevel


class HandlerError(Exception):
    """A handler's failure. ``permanent=True`` means retrying cannot help: straight to the DLQ."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class JobCancelled(Exception):
    """Raised by ``ctx.check_cancelled()`` when the job's owner cancelled it while it ran."""


class JobContext:
    """What a running handler sees: its job, a logger into the job's ExecutionLog, cancellation."""

    def __init__(self, job: Job, *, cancel_event: threading.Event | None = None) -> None:
        self.job = job
        self.attempt = job.attempt
        self.payload: dict[str, Any] = job.payload if isinstance(job.payload, dict) else {}
        # In a worker the heartbeat thread watches the database and sets the event; without
        # one (a handler called directly), the context asks the database itself.
        self._watched = cancel_event is not None
        self._cancel_event = cancel_event or threading.Event()

    def log(self, message: str, *, level: str = LogLevel.INFO, **context: Any) -> None:
        ExecutionLog.objects.create(
            job_id=self.job.id, attempt=self.attempt, level=level, message=message, context=context
        )

    def cancel_requested(self) -> bool:
        """True once the job was cancelled; long handlers should check it between steps."""
        if self._cancel_event.is_set() or self._watched:
            return self._cancel_event.is_set()
        if not connection.in_atomic_block:  # closing inside atomic() would kill the transaction
            close_old_connections()
        if Job.objects.filter(id=self.job.id, cancel_requested=True).exists():
            self._cancel_event.set()
        return self._cancel_event.is_set()

    def check_cancelled(self) -> None:
        if self.cancel_requested():
            raise JobCancelled(f"job {self.job.id} was cancelled")

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``, waking early (with JobCancelled) if the job is cancelled."""
        deadline_step = 0.25
        remaining = seconds
        while remaining > 0:
            self.check_cancelled()
            step = min(deadline_step, remaining)
            if self._cancel_event.wait(step):
                break
            remaining -= step
        self.check_cancelled()

    def parent_results(self) -> dict[str, Any]:
        """Results of this job's parents (all completed, or it would not be running), by id."""
        rows = JobDependency.objects.filter(job_id=self.job.id).values_list(
            "depends_on_id", "depends_on__type", "depends_on__result"
        )
        return {str(pid): {"type": ptype, "result": result} for pid, ptype, result in rows}


#: The ``pool`` of a type run by this deployment's own Celery workers.
BUILT_IN = "built-in"
#: The payload schema listed for a handler that declares none.
ANY_OBJECT: dict[str, Any] = {"type": "object"}


class Handler:
    """Base class of job handlers. Subclasses override ``run`` (and usually
    ``validate_payload``); they may declare a ``payload_schema`` (listed by ``/job-types/``),
    per-type ``defaults`` and a ``retry`` policy, as a ``@job_type`` function does."""

    type_name: ClassVar[str] = ""
    diagnostic: ClassVar[bool] = False
    payload_schema: ClassVar[dict[str, Any] | None] = None
    defaults: ClassVar[Defaults] = Defaults()
    #: None: the deployment's ``DRACONIC_RETRY_*`` settings.
    retry: ClassVar[RetryPolicy | None] = None
    pool: ClassVar[str] = BUILT_IN

    def validate_payload(self, payload: Mapping[str, Any]) -> dict[str, str]:
        """Errors in ``payload`` by field name, checked at submit; empty when it is usable."""
        return {}

    def run(self, ctx: JobContext) -> Any:
        """Do the job's work and return a JSON-serialisable result, or raise HandlerError."""
        raise NotImplementedError

    def is_permanent(self, exc: BaseException) -> bool:
        """Whether an attempt that raised ``exc`` must not be retried: the exception says so
        (``HandlerError(permanent=True)``), or the type's retry policy gives up on it."""
        if getattr(exc, "permanent", False):
            return True
        return self.retry is not None and not self.retry.retries(exc)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The type as ``GET /job-types/`` lists it (``served`` is added there)."""
        return {
            "name": cls.type_name,
            "description": inspect.cleandoc(cls.__dict__.get("__doc__") or ""),
            "payload_schema": cls.payload_schema or ANY_OBJECT,
            "defaults": cls.defaults.describe(),
            "retry": cls.retry.describe() if cls.retry else None,
            "pool": cls.pool,
        }
