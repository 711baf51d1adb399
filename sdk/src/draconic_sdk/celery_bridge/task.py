"""``DraconicTask``: a Celery task class whose ``.delay()``/``.apply_async()`` create a Draconic
job instead of a Celery message, on the caller's commit, returning a ``DraconicResult`` that
has the job's id at once. Bodies and call sites stay as they are:

    @shared_task(base=DraconicTask, autoretry_for=(IOError,), max_retries=4)
    def restock(sku: str, count: int) -> int: ...

or for every task of an app, one setting: ``Celery("shop", task_cls="draconic_sdk.
celery_bridge:DraconicTask")``. The server comes from the app's configuration
(``draconic_url``/``draconic_token``: ``CELERY_DRACONIC_URL`` in Django settings read with the
``CELERY`` namespace), else ``DRACONIC_URL``/``DRACONIC_TOKEN``.
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime
from typing import Any

from celery import Task

from draconic_sdk import bridging
from draconic_sdk.celery_bridge.mapping import BridgeError, body_of, mapped, problems
from draconic_sdk.client import Client
from draconic_sdk.models import Job

#: apply_async options with a Draconic meaning (the others below are refused).
TIMED = ("countdown", "eta")
#: Options that change nothing on Draconic, accepted so call sites need no edit (routing is
#: by job type; the payload is JSON).
IGNORED = frozenset({"queue", "routing_key", "exchange", "serializer", "headers", "retry"})
CANVAS = frozenset({"link", "link_error", "chord", "chain", "group_id", "group_index"})
#: Celery's priorities with the Redis broker (0 is the most urgent) as Draconic's levels.
PRIORITY_LEVELS = ("critical",) * 3 + ("high",) * 2 + ("normal",) * 2 + ("low",) * 3

_clients: dict[tuple[str | None, str | None], Client] = {}
_clients_lock = threading.Lock()


class DraconicResult:
    """What ``.delay()`` returns: the job's ``id`` at once (also ``task_id``, as Celery's
    ``AsyncResult`` names it); ``state``, ``ready()`` and ``get()`` ask Draconic."""

    def __init__(self, job_id: str, client: Client) -> None:
        self.id = self.task_id = job_id
        self._client = client

    def __repr__(self) -> str:
        return f"<DraconicResult: {self.id}>"

    def job(self) -> Job:
        return self._client.get(self.id)

    @property
    def state(self) -> str:
        """Celery's name of the job's status (PENDING, STARTED, RETRY, SUCCESS, FAILURE,
        REVOKED)."""
        return CELERY_STATES[self.job().status]

    status = state

    def ready(self) -> bool:
        return self.job().done

    def get(self, timeout: float | None = None) -> Any:
        """The job's result once it ends; raises ``BridgeError`` if it failed or was
        cancelled, ``draconic_sdk.Timeout`` after ``timeout`` seconds."""
        job = self._client.wait(self.id, timeout=timeout)
        if job.status != "completed":
            raise BridgeError(f"job {job.id} {job.status}: {job.error}")
        return job.result


CELERY_STATES = {
    "pending": "PENDING",
    "queued": "PENDING",
    "running": "STARTED",
    "retrying": "RETRY",
    "completed": "SUCCESS",
    "failed": "FAILURE",
    "cancelled": "REVOKED",
}


class DraconicTask(Task):  # type: ignore[type-arg]  # generic in celery-types only
    """A Celery task that runs as a Draconic job (see the module's docstring)."""

    abstract = True

    def apply_async(  # type: ignore[override]  # a DraconicResult, not an AsyncResult
        self,
        args: Any = None,
        kwargs: Any = None,
        task_id: str | None = None,
        producer: Any = None,
        link: Any = None,
        link_error: Any = None,
        shadow: Any = None,
        **options: Any,
    ) -> DraconicResult:
        found = problems(self, app_serializer=self.app.conf.task_serializer)
        if found:
            raise BridgeError("; ".join(found))
        _refuse_canvas(link=link, link_error=link_error, shadow=shadow, **options)
        try:
            payload = bridging.payload_of(body_of(self), args or (), kwargs or {})
        except bridging.PayloadError as exc:
            raise BridgeError(str(exc)) from None
        job_id = _job_id(task_id)
        request = self._request(payload, job_id, options)
        client = self.draconic_client()

        def send() -> None:
            client.submit(**request)

        bridging.send_on_commit(send)
        return DraconicResult(job_id, client)

    def _request(
        self, payload: dict[str, Any], job_id: str, options: dict[str, Any]
    ) -> dict[str, Any]:
        limits = mapped(self)
        request: dict[str, Any] = {
            "type": self.name,
            "payload": payload,
            "job_id": job_id,
            "idempotency_key": job_id,
            "max_attempts": limits.max_attempts,
            "timeout_seconds": limits.timeout_seconds,
        }
        if options.get("priority") is not None:
            request["priority"] = _level(options["priority"])
        if options.get("countdown") is not None:
            request["delay_seconds"] = float(options["countdown"])
        elif options.get("eta") is not None:
            eta = options["eta"]
            request["run_at"] = eta if isinstance(eta, (datetime, str)) else str(eta)
        return request

    def draconic_client(self) -> Client:
        """The client of the app's Draconic (one per url and token, shared)."""
        conf = self.app.conf
        key = (conf.get("draconic_url"), conf.get("draconic_token"))
        with _clients_lock:
            if key not in _clients:
                _clients[key] = Client(*key)
            return _clients[key]


def _refuse_canvas(**options: Any) -> None:
    canvas = sorted(name for name in CANVAS if options.get(name))
    if canvas:
        raise BridgeError(
            f"{', '.join(canvas)}: Celery canvas (chords, chains, callbacks) does not run on "
            "Draconic; submit a graph instead (draconic_sdk.Graph: each job depends_on the "
            "ones it needs, and a child reads its parents' results)"
        )
    if options.get("shadow"):
        raise BridgeError("shadow: a Draconic job's type is its task's name; drop shadow=")
    known = {"priority", *TIMED, *IGNORED, "shadow", *CANVAS}
    unknown = sorted(name for name in options if name not in known and options[name] is not None)
    if unknown:
        raise BridgeError(
            f"apply_async options {', '.join(unknown)} have no Draconic meaning; drop them "
            "(countdown, eta and priority are mapped; queue and routing options are ignored)"
        )


def _job_id(task_id: str | None) -> str:
    if task_id is None:
        return bridging.new_job_id()
    try:
        return str(uuid.UUID(str(task_id)))
    except ValueError:
        raise BridgeError(f"task_id={task_id!r}: a Draconic job id is a UUID") from None


def _level(priority: Any) -> str:
    if isinstance(priority, str) and priority in ("critical", "high", "normal", "low"):
        return priority
    if isinstance(priority, int) and not isinstance(priority, bool) and 0 <= priority <= 9:
        return PRIORITY_LEVELS[priority]
    raise BridgeError(f"priority={priority!r}: give 0..9 (0 most urgent) or a Draconic level")
