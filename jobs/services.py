"""Submitting jobs and graphs, adding edges, cancelling. Validation of shape happens in the
serializers; these services check what needs the database (parents, ownership, cycles) and
store everything in one transaction, or nothing."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from psycopg2.extras import Json, execute_values

from jobs import dispatcher, events, ledger, lifecycle, resolver, sql
from jobs.errors import JobConflict, JobValidationError
from jobs.models import ExecutionLog, Job, JobDependency, JobStatus, LogLevel
from jobs.transitions import Change, transition


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


def _lock_parents(owner_id: int, parent_ids: Iterable[str], *, field_name: str) -> dict[str, str]:
    """Lock the parents FOR SHARE (a completing parent waits for us) and return their status.

    The lock closes a race: without it a parent could complete between our read and our
    commit, decrement the children it sees, and never see the edge we are adding.
    """
    ids = sorted(set(parent_ids))
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id::text, status FROM {Job._meta.db_table} "
            "WHERE id = ANY(%s::uuid[]) AND owner_id = %s ORDER BY id FOR SHARE",
            [ids, owner_id],
        )
        found = dict(cursor.fetchall())
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
        pending_parents=pending,
        batch_id=batch,
    )


def _store(jobs: Sequence[Job]) -> None:
    """Insert new jobs and their first log rows in one statement, and announce them (and ask
    for a dispatch) once the transaction commits."""
    logs = {job_id: (log_id, at) for log_id, job_id, at in _insert_jobs(jobs)}
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
                log_id=logs[j.id][0],
                timestamp=logs[j.id][1],
            )
            for j in jobs
        ],
        then=dispatcher.request_dispatch_in,  # same round trip as the events
    )


def job_submit(*, owner: User, spec: JobSpec) -> tuple[Job, bool]:
    """Store one job. Returns ``(job, created)``; ``created`` is False for a repeated
    ``idempotency_key``, in which case the first job is returned and nothing is stored."""
    if spec.idempotency_key:
        existing = Job.objects.filter(owner=owner, idempotency_key=spec.idempotency_key).first()
        if existing is not None:
            return existing, False
    # Without parents, storing the job (and its log row) is one statement, atomic by itself:
    # no BEGIN/COMMIT round trips. With parents, their lock and the edges share a transaction.
    block = transaction.atomic() if spec.depends_on else nullcontext()
    try:
        with block:
            statuses = _lock_parents(owner.pk, spec.depends_on, field_name="depends_on")
            pending = sum(1 for s in statuses.values() if s != JobStatus.COMPLETED)
            job = _new_job(owner.pk, spec, job_id=uuid.uuid4(), pending=pending, batch=None)
            job.created_at = job.updated_at = timezone.now()
            job.depends_on_ids = list(spec.depends_on)  # type: ignore[attr-defined]
            _store([job])
            _insert_rows(
                JobDependency, ("job_id", "depends_on_id"), [(job.id, p) for p in statuses]
            )
    except IntegrityError:
        # Two requests with the same idempotency key raced; the other one won.
        existing = Job.objects.filter(owner=owner, idempotency_key=spec.idempotency_key).first()
        if spec.idempotency_key and existing is not None:
            return existing, False
        raise
    return job, True


def job_submit_batch(*, owner: User, specs: Sequence[JobSpec]) -> list[Job]:
    """Store a whole graph atomically. Specs name each other by ``key``; ``depends_on`` may
    mix keys of this batch and ids of existing jobs. A cycle is refused with its keys."""
    keys = [s.key for s in specs]
    ids = {k: uuid.uuid4() for k in keys if k is not None}
    graph: dict[str, list[str]] = {}
    external: set[str] = set()
    errors: dict[str, str] = {}
    for index, spec in enumerate(specs):
        node = spec.key or f"#{index}"
        graph[node] = []
        for ref in spec.depends_on:
            if ref in ids:
                graph[node].append(ref)
            else:
                try:
                    external.add(str(UUID(ref)))
                except ValueError:
                    errors[f"jobs[{index}].depends_on"] = (
                        f"{ref!r} is neither a key in this batch nor a job id"
                    )
    if errors:
        raise JobValidationError(errors)
    cycle = resolver.find_cycle(graph)
    if cycle is not None:
        raise JobValidationError({"jobs": f"dependency cycle: {' -> '.join(cycle)}"})
    batch_id = uuid.uuid4()
    with transaction.atomic():
        statuses = _lock_parents(owner.pk, external, field_name="jobs.depends_on")
        jobs: list[Job] = []
        edges: list[tuple[UUID, UUID]] = []
        new_ids = set(ids.values())
        now = timezone.now()
        for index, spec in enumerate(specs):
            job_id = ids[spec.key] if spec.key is not None else uuid.uuid4()
            refs = [ids.get(r) or UUID(r) for r in dict.fromkeys(spec.depends_on)]
            pending = sum(
                1 for r in refs if r in new_ids or statuses[str(r)] != JobStatus.COMPLETED
            )
            job = _new_job(owner.pk, spec, job_id=job_id, pending=pending, batch=batch_id)
            # A microsecond apart, so the batch keeps its order (FIFO) within a priority.
            job.created_at = job.updated_at = now + timedelta(microseconds=index)
            job.depends_on_ids = refs  # type: ignore[attr-defined]
            jobs.append(job)
            edges += [(job_id, r) for r in refs]
        _store(jobs)
        _insert_rows(JobDependency, ("job_id", "depends_on_id"), edges)
    return jobs


def _insert_jobs(jobs: Sequence[Job]) -> list[tuple[Any, ...]]:
    """Insert whole jobs and a "submitted" log row each with one statement (Django's
    bulk_create spends more time preparing 25 columns per row than PostgreSQL spends storing
    them). Returns ``(log id, job id, logged at)`` rows."""
    fields = Job._meta.concrete_fields
    json_fields = {f.attname for f in fields if f.get_internal_type() == "JSONField"}

    def value(job: Job, name: str) -> Any:
        raw = getattr(job, name)
        return Json(raw) if name in json_fields and raw is not None else raw

    rows = [tuple(value(job, f.attname) for f in fields) for job in jobs]
    logs = ExecutionLog._meta.db_table
    return _insert_rows(
        Job,
        cast("tuple[str, ...]", tuple(f.column for f in fields)),  # concrete fields have one
        rows,
        returning="id, created_at",
        then=(
            f"INSERT INTO {logs} (job_id, attempt, level, message, from_status, to_status, "
            f"context, created_at) SELECT new.id, 0, '{LogLevel.INFO}', 'submitted', '', "
            f"'{JobStatus.PENDING}', '{{}}', new.created_at FROM new "
            "RETURNING id, job_id, created_at"
        ),
    )


def _insert_rows(
    model: Any,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    returning: str = "",
    then: str = "",
) -> list[tuple[Any, ...]]:
    """One ``INSERT ... VALUES (...), (...)`` for all rows; Django's database errors as usual.
    With ``then``, the insert becomes a CTE named ``new`` that ``then`` (a statement reading
    from ``new``, built from constants only) follows, in the same round trip."""
    if not rows:
        return []
    single = len(rows) == 1  # a prepared statement (one shape), else one multi-row VALUES
    values = f"({', '.join(['%s'] * len(columns))})" if single else "%s"
    statement = f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) VALUES {values}"
    if returning:
        statement += f" RETURNING {returning}"
    if then:
        statement = f"WITH new AS ({statement}) {then}"
    fetch = bool(returning or then)
    with connection.cursor() as cursor, connection.wrap_database_errors:
        if single:
            sql.execute(cursor, [(statement, rows[0])])
            return cursor.fetchall() if fetch else []
        result = execute_values(cursor.cursor, statement, rows, page_size=len(rows), fetch=fetch)
    return list(result or [])


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
        descendants = lifecycle.descendant_ids(job.id)
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


def job_cancel(*, job: Job, reason: str = "cancelled by its owner") -> Job:
    """Cancel a job. Pending, queued and retrying jobs end ``cancelled`` at once (a queued job's
    reservation is released); a running job is asked to stop and ends ``cancelled`` when its
    handler notices. A terminal job raises JobConflict."""
    for _ in range(5):  # the job may change state under us; each loop re-reads it
        current = Job.objects.get(id=job.id)
        if current.status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED):
            raise JobConflict(f"job {job.id} is already {current.status} and cannot be cancelled")
        if current.status == JobStatus.RUNNING:
            if Job.objects.filter(id=job.id, status=JobStatus.RUNNING).update(
                cancel_requested=True, updated_at=timezone.now()
            ):
                return Job.objects.get(id=job.id)
            continue  # it stopped running meanwhile (retrying, completed...): look again
        with transaction.atomic():
            change = transition(
                job.id,
                from_=current.status,
                to=JobStatus.CANCELLED,
                attempt=current.attempt,  # the lease released below is this attempt's
                message=reason,
                fields={"completed_at": timezone.now(), "cancel_requested": True},
            )
            if change is not None:
                lifecycle.cancel_descendants(job.id, reason=f"parent {job.id} was cancelled")
                if current.status == JobStatus.QUEUED:
                    lease = ledger.lease_id(job.id, current.attempt)
                    transaction.on_commit(functools.partial(_release_and_dispatch, lease))
        if change is not None:
            return Job.objects.get(id=job.id)
    raise JobConflict(f"job {job.id} kept changing state; try again")


def _release_and_dispatch(lease: str) -> None:
    ledger.ledger_release([lease])
    dispatcher.request_dispatch()


def capacity_errors(cpu_units: int, memory_mb: int) -> dict[str, str]:
    errors = {}
    if cpu_units > settings.MAX_CPU_UNITS:
        errors["resource_requirements.cpu_units"] = (
            f"{cpu_units} exceeds the cluster's capacity of {settings.MAX_CPU_UNITS} CPU units"
        )
    if memory_mb > settings.MAX_MEMORY_MB:
        errors["resource_requirements.memory_mb"] = (
            f"{memory_mb} exceeds the cluster's capacity of {settings.MAX_MEMORY_MB} MB"
        )
    return errors
