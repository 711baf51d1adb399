"""Typed views of what the server answers, one dataclass per response schema of
``/api/schema/`` (``JobOutput`` is ``Job``, ``ExecutionLogOutput`` is ``LogEntry``, ...).

``from_json`` reads the fields this client knows and ignores others, so an older client keeps
working against a newer server; the schema coverage test (tests/e2e/test_sdk_schema.py)
fails when the server grows a field that no class here names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: The statuses a job does not leave by itself (a failed job leaves only when re-driven).
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
PRIORITIES = ("critical", "high", "normal", "low")


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class ResourceRequirements:
    cpu_units: int
    memory_mb: int


@dataclass(frozen=True)
class Job:
    """One job as ``GET /jobs/{id}`` shows it."""

    id: str
    type: str
    priority: str
    status: str
    payload: dict[str, Any]
    resource_requirements: ResourceRequirements
    depends_on: list[str]
    max_attempts: int
    attempt: int
    timeout_seconds: int
    idempotency_key: str | None
    batch_id: str | None
    result: Any
    error: str
    cancel_requested: bool
    worker: str
    created_at: datetime | None
    queued_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    next_attempt_at: datetime | None
    updated_at: datetime | None
    #: Shown by servers that have them (delayed jobs, limits); None from older ones.
    run_at: datetime | None = None
    concurrency_key: str | None = None

    @property
    def done(self) -> bool:
        """True once the job is completed, failed or cancelled."""
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        resources = data.get("resource_requirements") or {}
        return cls(
            id=data["id"],
            type=data["type"],
            priority=data["priority"],
            status=data["status"],
            payload=data.get("payload") or {},
            resource_requirements=ResourceRequirements(
                cpu_units=resources.get("cpu_units", 1), memory_mb=resources.get("memory_mb", 128)
            ),
            depends_on=list(data.get("depends_on") or []),
            max_attempts=data.get("max_attempts", 0),
            attempt=data.get("attempt", 0),
            timeout_seconds=data.get("timeout_seconds", 0),
            idempotency_key=data.get("idempotency_key"),
            batch_id=data.get("batch_id"),
            result=data.get("result"),
            error=data.get("error") or "",
            cancel_requested=bool(data.get("cancel_requested")),
            worker=data.get("worker") or "",
            **{name: _when(data.get(name)) for name in _JOB_TIMESTAMPS},
            run_at=_when(data.get("run_at")),
            concurrency_key=data.get("concurrency_key"),
        )


_JOB_TIMESTAMPS = (
    "created_at",
    "queued_at",
    "started_at",
    "completed_at",
    "next_attempt_at",
    "updated_at",
)


@dataclass(frozen=True)
class LogEntry:
    """One line of a job's execution log; ``id`` is the cursor of ``logs(since=...)``."""

    id: int
    attempt: int
    level: str
    message: str
    from_status: str
    to_status: str
    context: dict[str, Any]
    created_at: datetime | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LogEntry:
        return cls(
            id=data["id"],
            attempt=data.get("attempt", 0),
            level=data.get("level", ""),
            message=data.get("message", ""),
            from_status=data.get("from_status") or "",
            to_status=data.get("to_status") or "",
            context=data.get("context") or {},
            created_at=_when(data.get("created_at")),
        )


@dataclass(frozen=True)
class DeadLetter:
    """A job that failed for good, as the dead-letter queue lists it."""

    id: int
    job: Job
    reason: str
    error: str
    traceback: str
    attempts: int
    created_at: datetime | None
    requeued_at: datetime | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeadLetter:
        return cls(
            id=data["id"],
            job=Job.from_json(data["job"]),
            reason=data.get("reason", ""),
            error=data.get("error") or "",
            traceback=data.get("traceback") or "",
            attempts=data.get("attempts", 0),
            created_at=_when(data.get("created_at")),
            requeued_at=_when(data.get("requeued_at")),
        )


@dataclass(frozen=True)
class BatchResult:
    """What ``submit_graph`` stored: the batch, and its jobs by the keys of the graph."""

    batch_id: str
    jobs: dict[str, Job]
    all_jobs: list[Job]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchResult:
        jobs = [Job.from_json(j) for j in data["jobs"]]
        by_id = {j.id: j for j in jobs}
        keys = data.get("keys") or {}
        return cls(
            batch_id=data["batch_id"],
            jobs={key: by_id[job_id] for key, job_id in keys.items()},
            all_jobs=jobs,
        )


@dataclass(frozen=True)
class Requeued:
    """One re-driven dead letter: its job, now ``status``, and the descendants revived."""

    job_id: str
    status: str
    revived: list[str]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Requeued:
        return cls(
            job_id=data["job_id"], status=data["status"], revived=list(data.get("revived") or [])
        )


@dataclass(frozen=True)
class BulkRequeued:
    """A bulk re-drive: how many moved (``requeued``, ``revived``), or with a dry run how
    many would (``would_requeue``; the others are None then)."""

    requeued: int | None = None
    revived: int | None = None
    would_requeue: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BulkRequeued:
        return cls(
            requeued=data.get("requeued"),
            revived=data.get("revived"),
            would_requeue=data.get("would_requeue"),
        )


@dataclass(frozen=True)
class Health:
    """``GET /admin/health``: ``status`` ok or unavailable, the ``failing`` check names and
    every check's details. A 503 answer is a Health too (``ok`` False), not an error."""

    status: str
    failing: list[str]
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Health:
        return cls(
            status=data.get("status", "unavailable"),
            failing=list(data.get("failing") or []),
            checks=data.get("checks") or {},
        )


@dataclass(frozen=True)
class Event:
    """One state change from the WebSocket feed; ``cursor`` orders and identifies it
    (the id of its log line), ``replay`` is True when it was replayed from the log."""

    job_id: str
    status: str
    previous_status: str
    attempt: int
    priority: str
    job_type: str
    batch_id: str | None
    cursor: int
    timestamp: datetime | None
    replay: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Event:
        return cls(
            job_id=data["job_id"],
            status=data["status"],
            previous_status=data.get("previous_status") or "",
            attempt=data.get("attempt", 0),
            priority=data.get("priority", ""),
            job_type=data.get("job_type", ""),
            batch_id=data.get("batch_id"),
            cursor=int(data["cursor"]),
            timestamp=_when(data.get("timestamp")),
            replay=bool(data.get("replay")),
        )
