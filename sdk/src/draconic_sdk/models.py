"""Typed views of what the server answers, one dataclass per response schema of
``/api/schema/`` (``JobOutput`` is ``Job``, ``ExecutionLogOutput`` is ``LogEntry``, ...).

``from_json`` reads the fields this client knows and ignores others, so an older client keeps
working against a newer server; the schema coverage test (tests/integration/test_sdk_schema.py)
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
    #: Shown by servers that have them (delayed jobs, limits, schedules); None from older ones.
    run_at: datetime | None = None
    concurrency_key: str | None = None
    #: The schedule that fired it (its id) and the due time it was fired for.
    schedule: str | None = None
    scheduled_for: datetime | None = None
    #: Only ``get`` shows it: why a pending or retrying job waits (``[{"reason": "run_at",
    #: "at": ...}]``, parents, retry_backoff, capacity, a limit); [] when nothing holds it,
    #: None when it is not waiting or the answer was a list's.
    waiting_on: list[dict[str, Any]] | None = None

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
            schedule=data.get("schedule"),
            scheduled_for=_when(data.get("scheduled_for")),
            waiting_on=data.get("waiting_on"),
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
class ScheduleRun:
    """One fire of a schedule: its due time, whether a trigger made it (``manual``), what
    came of it (``outcome``: fired, skipped, ...) and the job it submitted, as it is now."""

    due_at: datetime | None
    manual: bool
    outcome: str
    detail: str
    job_id: str | None
    job_status: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScheduleRun:
        return cls(
            due_at=_when(data.get("due_at")),
            manual=bool(data.get("manual")),
            outcome=data.get("outcome", ""),
            detail=data.get("detail") or "",
            job_id=data.get("job_id"),
            job_status=data.get("job_status"),
        )


@dataclass(frozen=True)
class Schedule:
    """A schedule: ``job`` (the body of ``POST /jobs/``) submitted on a ``cron`` expression
    or every ``interval_seconds``. ``next_fire_times`` and ``last_runs`` come with ``get``,
    ``create``, ``update``, ``pause`` and ``resume``; a list leaves them empty."""

    id: str
    name: str
    cron: str | None
    interval_seconds: int | None
    timezone: str
    job: dict[str, Any]
    overlap: str
    catchup: str
    catchup_limit: int
    start_at: datetime | None
    end_at: datetime | None
    paused: bool
    next_fire_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    next_fire_times: list[datetime] = field(default_factory=list)
    last_runs: list[ScheduleRun] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Schedule:
        return cls(
            id=data["id"],
            name=data.get("name", ""),
            cron=data.get("cron"),
            interval_seconds=data.get("interval_seconds"),
            timezone=data.get("timezone", "UTC"),
            job=data.get("job") or {},
            overlap=data.get("overlap", ""),
            catchup=data.get("catchup", ""),
            catchup_limit=data.get("catchup_limit", 0),
            paused=bool(data.get("paused")),
            **{name: _when(data.get(name)) for name in _SCHEDULE_TIMESTAMPS},
            next_fire_times=[
                when for when in map(_when, data.get("next_fire_times") or []) if when
            ],
            last_runs=[ScheduleRun.from_json(run) for run in data.get("last_runs") or []],
        )


_SCHEDULE_TIMESTAMPS = ("start_at", "end_at", "next_fire_at", "created_at", "updated_at")


@dataclass(frozen=True)
class Limit:
    """A limit rule (staff): at most ``max_concurrency`` jobs of ``key`` hold a lease at
    once, and at most ``rate`` ("10/s", "600/m") start. ``key`` is ``type:<job type>``, an
    exact concurrency key or a prefix pattern (``tenant:*``); ``in_use`` is the leases per
    limit name it counts, now."""

    id: int
    key: str
    max_concurrency: int | None
    rate: str | None
    in_use: dict[str, int] | None
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Limit:
        return cls(
            id=data["id"],
            key=data["key"],
            max_concurrency=data.get("max_concurrency"),
            rate=data.get("rate"),
            in_use=data.get("in_use"),
            created_at=_when(data.get("created_at")),
            updated_at=_when(data.get("updated_at")),
        )


@dataclass(frozen=True)
class JobTypeInfo:
    """A job type as ``GET /job-types/`` lists it: its payload's JSON Schema, its defaults
    (what a job gets when its body leaves them out), its retry policy (None: the
    deployment's), the pool that serves it (``built-in`` or an external pool's name) and
    whether a live worker serves it now."""

    name: str
    description: str
    payload_schema: dict[str, Any]
    defaults: dict[str, Any]
    retry: dict[str, Any] | None
    pool: str
    served: bool

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobTypeInfo:
        return cls(
            name=data["name"],
            description=data.get("description", ""),
            payload_schema=data.get("payload_schema") or {"type": "object"},
            defaults=data.get("defaults") or {},
            retry=data.get("retry"),
            pool=data.get("pool", "built-in"),
            served=bool(data.get("served")),
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
