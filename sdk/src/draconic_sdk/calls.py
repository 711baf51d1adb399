"""Every REST call of the client, described once as data (method, path, body, whether it is
safe to repeat, how to read the answer), so that ``Client`` and ``AsyncClient`` differ only in
how they send it (``transport``). Nothing here does I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from draconic_sdk.graph import Graph, JobOptions
from draconic_sdk.models import (
    BatchResult,
    BulkRequeued,
    DeadLetter,
    Health,
    Job,
    JobTypeInfo,
    LogEntry,
    Requeued,
)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list; ``has_next`` says whether ``page + 1`` exists."""

    items: list[T]
    count: int
    has_next: bool


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP request and how its answer becomes a ``T``.

    ``idempotent``: sending it twice has the effect of sending it once, so the transport
    may repeat it after a lost answer or a 429/503 (a GET; a submit with its idempotency key).
    ``ok_statuses``: error statuses that are answers, not errors (a 503 health report).
    ``binary``: the answer is a file, given to ``parse`` as bytes rather than decoded JSON.
    """

    method: str
    path: str
    parse: Callable[[Any], T]
    params: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None
    idempotent: bool = False
    ok_statuses: frozenset[int] = frozenset()
    binary: bool = False


def job_id_of(job: str | Job) -> str:
    return job.id if isinstance(job, Job) else str(job)


def new_idempotency_key() -> str:
    """A key for a submit whose caller gave none: random, so two submits are two jobs, and
    the same key on each retry of one submit, so a retry never makes a second job."""
    return f"sdk-{uuid.uuid4()}"


def submit(
    type: str,
    payload: Mapping[str, Any] | None = None,
    *,
    options: JobOptions | None = None,
    depends_on: Iterable[str | Job] = (),
    idempotency_key: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Call[Job]:
    """``POST /jobs/``. ``extra``: fields of the body this client does not name yet."""
    body: dict[str, Any] = {"type": type, "payload": dict(payload or {})}
    body.update((options or JobOptions()).to_json())
    parents = [job_id_of(p) for p in depends_on]
    if parents:
        body["depends_on"] = parents
    body["idempotency_key"] = idempotency_key or new_idempotency_key()
    body.update(extra or {})
    return Call("POST", "/jobs/", Job.from_json, json=body, idempotent=True)


def submit_graph(graph: Graph) -> Call[BatchResult]:
    """``POST /jobs/batch/``: batches take no idempotency key, so it is never repeated."""
    return Call("POST", "/jobs/batch/", BatchResult.from_json, json=graph.to_json())


def get(job: str | Job) -> Call[Job]:
    return Call("GET", f"/jobs/{job_id_of(job)}", Job.from_json, idempotent=True)


def _page(parse: Callable[[Any], R]) -> Callable[[Any], Page[R]]:
    def read(data: Any) -> Page[R]:
        return Page(
            items=[parse(item) for item in data["results"]],
            count=data.get("count", 0),
            has_next=bool(data.get("next")),
        )

    return read


def _filters(**filters: str | None) -> dict[str, str]:
    return {name: value for name, value in filters.items() if value is not None}


def jobs_page(
    *,
    page: int,
    page_size: int,
    status: str | None = None,
    type: str | None = None,
    priority: str | None = None,
    scheduled: bool | None = None,
) -> Call[Page[Job]]:
    """``GET /jobs/``: one page, newest first."""
    params = _filters(status=status, type=type, priority=priority)
    if scheduled is not None:
        params["scheduled"] = "true" if scheduled else "false"
    params.update(page=str(page), page_size=str(page_size))
    return Call("GET", "/jobs/", _page(Job.from_json), params=params, idempotent=True)


def cancel(job: str | Job) -> Call[Job]:
    """``PATCH /jobs/{id}/cancel``: not repeated (a second cancel of a cancelled job is a 409)."""
    return Call("PATCH", f"/jobs/{job_id_of(job)}/cancel", Job.from_json)


def logs_page(job: str | Job, *, since: int | None, page: int) -> Call[Page[LogEntry]]:
    params = {"page": str(page), "page_size": "500"}
    if since is not None:
        params["since"] = str(since)
    path = f"/jobs/{job_id_of(job)}/logs"
    return Call("GET", path, _page(LogEntry.from_json), params=params, idempotent=True)


def add_dependencies(job: str | Job, parents: Iterable[str | Job]) -> Call[Job]:
    body = {"depends_on": [job_id_of(p) for p in parents]}
    return Call("POST", f"/jobs/{job_id_of(job)}/dependencies/", Job.from_json, json=body)


def export(job: str | Job) -> Call[bytes]:
    """``GET /jobs/{id}/export``: the file of a completed ``data_export`` job (raw bytes)."""
    return Call("GET", f"/jobs/{job_id_of(job)}/export", bytes, idempotent=True, binary=True)


def healthz() -> Call[dict[str, Any]]:
    return Call("GET", "/healthz", dict, idempotent=True)


def health() -> Call[Health]:
    """``GET /admin/health``: its 503 (a failing check) is a report, not an error."""
    return Call(
        "GET", "/admin/health", Health.from_json, idempotent=True, ok_statuses=frozenset({503})
    )


def metrics() -> Call[dict[str, Any]]:
    return Call("GET", "/admin/metrics", dict, idempotent=True)


def job_types() -> Call[list[JobTypeInfo]]:
    """``GET /job-types/``: every type the deployment accepts."""
    return Call("GET", "/job-types/", _job_types, idempotent=True)


def _job_types(data: Any) -> list[JobTypeInfo]:
    return [JobTypeInfo.from_json(item) for item in data]


def dlq_page(
    *, page: int, page_size: int, type: str | None = None, reason: str | None = None
) -> Call[Page[DeadLetter]]:
    params = _filters(type=type, reason=reason)
    params.update(page=str(page), page_size=str(page_size))
    return Call("GET", "/admin/dlq/", _page(DeadLetter.from_json), params=params, idempotent=True)


def dlq_retry(job: str | Job, *, descendants: bool = True) -> Call[Requeued]:
    path = f"/admin/dlq/{job_id_of(job)}/retry"
    return Call("POST", path, Requeued.from_json, json={"descendants": descendants})


def dlq_retry_bulk(
    *,
    type: str | None = None,
    reason: str | None = None,
    all: bool = False,
    dry_run: bool = False,
    descendants: bool = True,
) -> Call[BulkRequeued]:
    """``POST /admin/dlq/retry/``: a dry run changes nothing, so only it may be repeated."""
    body: dict[str, Any] = _filters(type=type, reason=reason)
    if all:
        body["all"] = True
    body.update(dry_run=dry_run, descendants=descendants)
    return Call("POST", "/admin/dlq/retry/", BulkRequeued.from_json, json=body, idempotent=dry_run)
