"""``DraconicBackend``: django.tasks' ``@task`` functions run as Draconic jobs.

    TASKS = {"default": {"BACKEND": "draconic_sdk.django_tasks.DraconicBackend",
                         "OPTIONS": {"url": "http://draconic:8000", "token": "..."}}}

``task.enqueue(*args, **kwargs)`` returns its ``TaskResult`` at once, with an id chosen here;
the job (type: the function's dotted path, payload: the arguments by parameter name, see
``draconic_sdk.bridging``) is sent when the caller's transaction commits, with that id as the
job's id and its idempotency key; a rollback sends nothing. ``priority`` maps onto the four
levels (``bridging.level_of``) and travels exactly as ``priority_rank``; ``run_after`` is the
job's ``run_at``. ``get_result(id)`` reads the job and its log back. The job runs in the
project's own Draconic worker, which finds the project's tasks through ``source``.

OPTIONS: ``url``, ``token`` (default: ``DRACONIC_URL``/``DRACONIC_TOKEN``), ``timeout``
(seconds per request), ``database`` (the alias whose commit sends the job; default
``default``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from django.core import checks
from django.utils import timezone
from django.utils.module_loading import import_string

from draconic_sdk import bridging
from draconic_sdk.aio import AsyncClient
from draconic_sdk.client import Client
from draconic_sdk.django_tasks import results
from draconic_sdk.django_tasks.compat import (
    BaseTaskBackend,
    InvalidTask,
    Task,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
    signals,
)
from draconic_sdk.errors import NotFound

OPTIONS = frozenset({"url", "token", "timeout", "database"})


class DraconicBackend(BaseTaskBackend):
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.url: str | None = self.options.get("url")
        self.token: str | None = self.options.get("token")
        self.timeout = float(self.options.get("timeout", 30.0))
        self.database: str | None = self.options.get("database")
        self._client: Client | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Client:
        """One blocking client per backend (its connection pool is thread-safe)."""
        with self._lock:
            if self._client is None:
                self._client = Client(self.url, self.token, timeout=self.timeout)
            return self._client

    def async_client(self) -> AsyncClient:
        return AsyncClient(self.url, self.token, timeout=self.timeout)

    def validate_task(self, task: Task[Any, Any]) -> None:
        """Django's checks, and a payload that names every argument (no ``*args``): a task that
        cannot be a job is refused where it is defined, at import."""
        super().validate_task(task)
        try:
            _refuse_var_positional(task)
        except TypeError as exc:
            raise InvalidTask(str(exc)) from None

    # --- enqueue --------------------------------------------------------------------------

    def enqueue(self, task: Task[Any, Any], args: Any, kwargs: Any) -> TaskResult[Any]:
        self.validate_task(task)
        job_id, request = self._request(task, args, kwargs)
        result = self._enqueued(task, job_id, args, kwargs)

        def send() -> None:
            self.client.submit(**request)
            signals.task_enqueued.send(type(self), task_result=result)

        bridging.send_on_commit(send, using=self.database)
        return result

    async def aenqueue(self, task: Task[Any, Any], args: Any, kwargs: Any) -> TaskResult[Any]:
        """Sends at once through the ``AsyncClient``, unless a transaction is open on the
        backend's database (then on its commit, as ``enqueue``)."""
        if bridging.in_transaction(self.database):
            return self.enqueue(task, args, kwargs)
        self.validate_task(task)
        job_id, request = self._request(task, args, kwargs)
        async with self.async_client() as client:
            await client.submit(**request)
        result = self._enqueued(task, job_id, args, kwargs)
        signals.task_enqueued.send(type(self), task_result=result)
        return result

    def _request(self, task: Task[Any, Any], args: Any, kwargs: Any) -> tuple[str, dict[str, Any]]:
        try:
            payload = bridging.payload_of(task.func, args, kwargs, skip_first=task.takes_context)
        except bridging.PayloadError as exc:
            raise InvalidTask(str(exc)) from None
        job_id = bridging.new_job_id()
        return job_id, {
            "type": task.module_path,
            "payload": payload,
            "priority": bridging.level_of(task.priority),
            "priority_rank": task.priority,
            "run_at": task.run_after,
            "job_id": job_id,
            "idempotency_key": job_id,
        }

    def _enqueued(
        self, task: Task[Any, Any], job_id: str, args: Any, kwargs: Any
    ) -> TaskResult[Any]:
        return TaskResult(
            task=task,
            id=job_id,
            status=TaskResultStatus.READY,
            enqueued_at=timezone.now(),
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=list(args),
            kwargs=dict(kwargs),
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )

    # --- results --------------------------------------------------------------------------

    def get_result(self, result_id: str) -> TaskResult[Any]:
        try:
            job = self.client.get(result_id)
            logs = self.client.logs(result_id)
        except NotFound:
            raise TaskResultDoesNotExist(result_id) from None
        return results.task_result(  # type: ignore[no-any-return]
            task=self._task_of(job), job=job, logs=logs, backend=self.alias
        )

    async def aget_result(self, result_id: str) -> TaskResult[Any]:
        async with self.async_client() as client:
            try:
                job = await client.get(result_id)
                logs = await client.logs(result_id)
            except NotFound:
                raise TaskResultDoesNotExist(result_id) from None
        return results.task_result(  # type: ignore[no-any-return]
            task=self._task_of(job), job=job, logs=logs, backend=self.alias
        )

    def _task_of(self, job: Any) -> Task[Any, Any]:
        """The ``@task`` the job runs (its type is the function's dotted path), with the
        priority and run_after it was enqueued with."""
        try:
            task = import_string(job.type)
        except ImportError:
            task = None
        if not isinstance(task, Task):
            raise TaskResultDoesNotExist(
                f"{job.id} is a {job.type!r} job, not a task this process can import"
            )
        return task.using(priority=job.priority_rank, run_after=job.run_at)

    def check(self, **kwargs: Any) -> Iterable[checks.CheckMessage]:
        unknown = sorted(set(self.options) - OPTIONS)
        if unknown:
            yield checks.Error(
                f"TASKS[{self.alias!r}] OPTIONS has unknown keys: {', '.join(unknown)}",
                hint=f"DraconicBackend takes {', '.join(sorted(OPTIONS))}",
                id="draconic_sdk.E001",
            )


def _refuse_var_positional(task: Task[Any, Any]) -> None:
    import inspect

    for param in inspect.signature(task.func).parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            raise TypeError(
                f"{task.module_path}: *{param.name} cannot be a job's payload (its values "
                "have no names); take named parameters"
            )
