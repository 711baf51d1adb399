"""Submitting jobs and graphs, and adding edges. Validation of shape happens in the
serializers; these services check what needs the database (parents, ownership, cycles) and
store everything in one transaction, or nothing. After the commit the new jobs' events go out
and a dispatch is requested, in one Redis round trip."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from psycopg2.extras import Json, execute_values

from jobs.api import statements
from jobs.engine import graph, prepared, resolver, wakeup
from jobs.errors import IdempotencyConflict, JobConflict, JobValidationError
from jobs.live import events
from jobs.live.events import Change
from jobs.models import ExecutionLog, Job, JobDependency, JobStatus


@dataclass
class JobSpec:
    """A validated job to create. ``depends_on`` holds job ids, or batch keys in a batch."""

    type: str
    priority: int
    payload: dict[str, Any]
    cpu_units: int
    memory_mb: int
    max_attempts: int
    timeout_seconds: int
    depends_on: list[str] = field(default_factory=list)
    idempotency_key: str | None = None
    key: str | None = None
    run_at: datetime | None = None
    """Not started before this time (aware); None: as soon as it is ready."""
    #: Set by a schedule's fire: the schedule and the due time the job is for.
    schedule_id: UUID | None = None
    scheduled_for: datetime | None = None
    concurrency_key: str = ""
    #: The id the client chose for the job (None: a new random one).
    job_id: UUID | None = None
    priority_rank: int = 0


def job_submit(*, owner: User, spec: JobSpec) -> tuple[Job, bool]:
    """Store one job. Returns ``(job, created)``; ``created`` is False for a repeated
    ``idempotency_key`` with the same request, in which case the first job is returned and
    nothing is stored. The same key with a different request raises ``IdempotencyConflict``.
    A key is the owner's for as long as its job row exists."""
    if spec.idempotency_key:
        existing = _job_with_key(owner, spec)
        if existing is not None:
            return existing, False
    if spec.job_id is not None:
        _refuse_taken_id(spec.job_id)
    # Without parents, storing the job (and its log row) is one statement, atomic by itself:
    # no BEGIN/COMMIT round trips. With parents, their lock and the edges share a transaction.
    block = transaction.atomic() if spec.depends_on else nullcontext()
    try:
        with block:
            statuses = _lock_parents(owner.pk, spec.depends_on, field_name="depends_on")
            pending = sum(1 for s in statuses.values() if s != JobStatus.COMPLETED)
            job_id = spec.job_id or uuid.uuid4()
            job = _new_job(owner.pk, spec, job_id=job_id, pending=pending, batch=None)
            job.created_at = job.updated_at = timezone.now()
            _store([job])
            _insert_edges([(job.id, UUID(p)) for p in statuses])
    except IntegrityError:
        # Two requests with the same idempotency key raced; the other one won.
        existing = _job_with_key(owner, spec) if spec.idempotency_key else None
        if existing is not None:
            return existing, False
        if spec.job_id is not None:
            _refuse_taken_id(spec.job_id)  # two requests raced for one id without a key
        raise
    return job, True


def _refuse_taken_id(job_id: UUID) -> None:
    """A client-chosen id that another job has (any owner's) is a 409 naming ``id``."""
    if Job.objects.filter(id=job_id).exists():
        raise JobConflict({"id": f"{job_id} is the id of another job; choose a new one"})


def _job_with_key(owner: User, spec: JobSpec) -> Job | None:
    """The owner's job stored under ``spec``'s idempotency key, if it was stored for the same
    request; raises ``IdempotencyConflict`` if it was stored for another."""
    existing = Job.objects.filter(owner=owner, idempotency_key=spec.idempotency_key).first()
    if existing is None:
        return None
    differing = _differences(existing, spec)
    if differing:
        raise IdempotencyConflict(
            key=str(spec.idempotency_key), job_id=str(existing.id), differing=differing
        )
    return existing


def _differences(job: Job, spec: JobSpec) -> list[str]:
    """The request fields in which ``spec`` differs from the stored ``job`` (defaults already
    applied on both sides; parents compared as a set, as order means nothing there). The due
    time is not compared: a client repeating a request with ``delay_seconds`` sends the same
    request, though its ``run_at`` comes out later."""
    stored = {
        "type": (job.type, spec.type),
        "priority": (job.priority, spec.priority),
        # As JSON: Python's == would take true for 1 and 1.0 for 1, which jsonb keeps apart.
        "payload": (_canonical(job.payload), _canonical(spec.payload)),
        "resource_requirements": ((job.cpu_units, job.memory_mb), (spec.cpu_units, spec.memory_mb)),
        "max_attempts": (job.max_attempts, spec.max_attempts),
        "timeout_seconds": (job.timeout_seconds, spec.timeout_seconds),
        "concurrency_key": (job.concurrency_key, spec.concurrency_key),
        "priority_rank": (job.priority_rank, spec.priority_rank),
        "id": (job.id, spec.job_id or job.id),
    }
    differing = [name for name, (old, new) in stored.items() if old != new]
    parents = {str(p) for p in job.parent_edges.values_list("depends_on_id", flat=True)}
    if parents != set(spec.depends_on):
        differing.append("depends_on")
    return differing


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def job_submit_batch(*, owner: User, specs: Sequence[JobSpec]) -> list[Job]:
    """Store a whole graph atomically. Specs name each other by ``key``; ``depends_on`` may
    mix keys of this batch and ids of existing jobs. A cycle is refused with its keys."""
    ids = {s.key: uuid.uuid4() for s in specs if s.key is not None}
    external = _check_graph(specs, ids)
    batch_id = uuid.uuid4()
    with transaction.atomic():
        statuses = _lock_parents(owner.pk, external, field_name="jobs.depends_on")
        jobs: list[Job] = []
        edges: list[tuple[UUID, UUID]] = []
        now = timezone.now()
        for index, (spec, refs) in enumerate(zip(specs, batch_parents(specs, ids), strict=True)):
            job_id = ids[spec.key] if spec.key is not None else uuid.uuid4()
            pending = sum(
                1 for r in refs if str(r) not in statuses or statuses[str(r)] != JobStatus.COMPLETED
            )
            job = _new_job(owner.pk, spec, job_id=job_id, pending=pending, batch=batch_id)
            # A microsecond apart, so the batch keeps its order (FIFO) within a priority.
            job.created_at = job.updated_at = now + timedelta(microseconds=index)
            jobs.append(job)
            edges += [(job_id, r) for r in refs]
        _store(jobs)
        _insert_edges(edges)
    return jobs


def batch_parents(specs: Sequence[JobSpec], ids: Mapping[str, UUID]) -> list[list[UUID]]:
    """Each spec's parents as job ids (batch keys resolved through ``ids``), without repeats."""
    return [[ids.get(r) or UUID(r) for r in dict.fromkeys(spec.depends_on)] for spec in specs]


def _check_graph(specs: Sequence[JobSpec], ids: Mapping[str, UUID]) -> set[str]:
    """Refuse references that are neither keys nor ids, and cycles; returns the ids of the
    existing jobs the batch depends on."""
    graph_: dict[str, list[str]] = {}
    external: set[str] = set()
    errors: dict[str, str] = {}
    for index, spec in enumerate(specs):
        node = spec.key or f"#{index}"
        graph_[node] = []
        for ref in spec.depends_on:
            if ref in ids:
                graph_[node].append(ref)
                continue
            try:
                external.add(str(UUID(ref)))
            except ValueError:
                errors[f"jobs[{index}].depends_on"] = (
                    f"{ref!r} is neither a key in this batch nor a job id"
                )
    if errors:
        raise JobValidationError(errors)
    cycle = resolver.find_cycle(graph_)
    if cycle is not None:
        raise JobValidationError({"jobs": f"dependency cycle: {' -> '.join(cycle)}"})
    return external


def _lock_parents(owner_id: int, parent_ids: Iterable[str], *, field_name: str) -> dict[str, str]:
    """Lock the parents FOR SHARE (``statements.LOCK_PARENTS``) and return their status by id;
    refuse unknown parents and parents that will never complete."""
    ids = sorted(set(parent_ids))
    if not ids:
        return {}
    with connection.cursor() as cursor:
        prepared.execute(cursor, (statements.LOCK_PARENTS, {"job_ids": ids, "owner_id": owner_id}))
        found = {row["id"]: row["status"] for row in prepared.rows(cursor)}
    missing = [i for i in ids if i not in found]
    if missing:
        raise JobValidationError({field_name: f"unknown job id(s): {', '.join(missing)}"})
    dead = {i: s for i, s in found.items() if s in (JobStatus.FAILED, JobStatus.CANCELLED)}
    if dead:
        listed = ", ".join(f"{i} is {s}" for i, s in sorted(dead.items()))
        raise JobValidationError({field_name: f"parent job(s) will never complete: {listed}"})
    return found


def _new_job(
    owner_id: int, spec: JobSpec, *, job_id: UUID, pending: int, batch: UUID | None
) -> Job:
    return Job(
        id=job_id,
        owner_id=owner_id,
        type=spec.type,
        priority=spec.priority,
        payload=spec.payload,
        cpu_units=spec.cpu_units,
        memory_mb=spec.memory_mb,
        max_attempts=spec.max_attempts,
        timeout_seconds=spec.timeout_seconds,
        idempotency_key=spec.idempotency_key,
        concurrency_key=spec.concurrency_key,
        pending_parents=pending,
        batch_id=batch,
        # Held in PostgreSQL until due: next_attempt_at is the time gate admission reads.
        run_at=spec.run_at,
        next_attempt_at=spec.run_at,
        schedule_id=spec.schedule_id,
        scheduled_for=spec.scheduled_for,
        priority_rank=spec.priority_rank,
    )


#: The columns of ``statements.INSERT_JOB``/``INSERT_JOBS``, in their order.
JOB_COLUMNS = tuple(str(f.column) for f in Job._meta.concrete_fields)
_JSON_COLUMNS = frozenset(
    f.column for f in Job._meta.concrete_fields if f.get_internal_type() == "JSONField"
)


def _row(job: Job) -> dict[str, Any]:
    """A new job's column values, JSON columns as JSON."""
    values = {}
    for column, name in zip(
        JOB_COLUMNS, (f.attname for f in Job._meta.concrete_fields), strict=True
    ):
        value = getattr(job, name)
        values[column] = Json(value) if column in _JSON_COLUMNS and value is not None else value
    return values


def _store(jobs: Sequence[Job]) -> None:
    """Insert new jobs and their first log rows in one statement, and announce them (and ask
    for a dispatch) once the transaction commits."""
    rows = [_row(job) for job in jobs]
    with connection.cursor() as cursor, connection.wrap_database_errors:
        if len(rows) == 1:
            prepared.execute(cursor, (statements.INSERT_JOB, rows[0]))
            logged = prepared.rows(cursor)
        else:
            values = [tuple(row[c] for c in JOB_COLUMNS) for row in rows]
            execute_values(cursor.cursor, statements.INSERT_JOBS, values, page_size=len(values))
            logged = prepared.rows(cursor)
    logs = {row["job_id"]: row for row in logged}
    events.publish_on_commit(
        [
            Change(
                job_id=j.id,
                owner_id=j.owner_id,
                type=j.type,
                priority=j.priority,
                status=JobStatus.PENDING,
                previous_status="",
                attempt=0,
                batch_id=j.batch_id,
                log_id=logs[j.id]["log_id"],
                timestamp=logs[j.id]["logged_at"],
            )
            for j in jobs
        ],
        then=wakeup.request_dispatch_in,  # same round trip as the events
    )


def _insert_edges(edges: Sequence[tuple[UUID, UUID]]) -> None:
    if not edges:
        return
    with connection.cursor() as cursor, connection.wrap_database_errors:
        execute_values(cursor.cursor, statements.INSERT_EDGES, edges, page_size=len(edges))


def job_add_dependencies(*, job: Job, parent_ids: Sequence[str]) -> Job:
    """Add edges ``job -> parent`` to a pending job, refusing a cycle. Returns the fresh job."""
    with transaction.atomic():
        locked = Job.objects.select_for_update().filter(id=job.id).first()
        if locked is None or locked.status != JobStatus.PENDING:
            raise JobConflict(
                f"dependencies can be added only to a pending job; it is {job.status}"
            )
        if str(job.id) in set(parent_ids):
            raise JobValidationError({"depends_on": "a job cannot depend on itself"})
        statuses = _lock_parents(job.owner_id, parent_ids, field_name="depends_on")
        descendants = graph.descendant_ids(job.id)
        looping = sorted(p for p in statuses if UUID(p) in descendants)
        if looping:
            raise JobValidationError(
                {"depends_on": f"would create a cycle: {', '.join(looping)} depend(s) on {job.id}"}
            )
        existing = set(
            JobDependency.objects.filter(job=job, depends_on_id__in=list(statuses)).values_list(
                "depends_on_id", flat=True
            )
        )
        new = [p for p in statuses if UUID(p) not in existing]
        JobDependency.objects.bulk_create(
            [JobDependency(job_id=job.id, depends_on_id=p) for p in new]
        )
        more = sum(1 for p in new if statuses[p] != JobStatus.COMPLETED)
        if more:
            # Not a status change: only the dependency counter moves.
            Job.objects.filter(id=job.id).update(pending_parents=locked.pending_parents + more)
        ExecutionLog.objects.create(
            job_id=job.id, message=f"dependencies added: {', '.join(new) or 'none new'}"
        )
    return Job.objects.get(id=job.id)
