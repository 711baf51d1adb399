"""The only code that writes ``Job.status``.

Every change is a compare-and-swap (``UPDATE ... WHERE id = ANY(...) AND status = ANY(...)``)
that writes one ExecutionLog row per job in the same transaction and publishes its event after
the commit. A CAS that matches no row means another process got there first: the caller gets
an empty list and must not act as if the change happened.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection
from psycopg2.extras import Json

from jobs import events, sql
from jobs.models import ExecutionLog, Job, JobDependency, JobStatus, LogLevel

S = JobStatus
ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    S.PENDING: frozenset({S.QUEUED, S.CANCELLED, S.FAILED}),
    S.QUEUED: frozenset({S.RUNNING, S.RETRYING, S.FAILED, S.CANCELLED, S.PENDING}),
    S.RUNNING: frozenset({S.COMPLETED, S.RETRYING, S.FAILED, S.CANCELLED}),
    S.RETRYING: frozenset({S.QUEUED, S.CANCELLED, S.FAILED}),
    S.FAILED: frozenset({S.PENDING}),  # re-drive from the dead-letter queue
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
}


class InvalidTransition(Exception):
    def __init__(self, from_: JobStatus, to: JobStatus) -> None:
        super().__init__(f"a job cannot go from {from_} to {to}")
        self.from_ = from_
        self.to = to


@dataclass(frozen=True)
class SQL:
    """A raw SQL expression for a SET clause, e.g. ``SQL("attempt + 1")``. Internal use only."""

    text: str


NOW = SQL("now()")


@dataclass(frozen=True)
class Change:
    """One job's successful transition, as published to listeners."""

    job_id: UUID
    owner_id: int
    type: str
    priority: int
    status: str
    previous_status: str
    attempt: int
    batch_id: UUID | None
    log_id: int
    timestamp: datetime
    extra: Mapping[str, Any] = field(default_factory=dict)
    job: Job | None = field(default=None, compare=False, repr=False)
    """The job's row as the transition left it (None for changes built elsewhere)."""
    released: int = 0
    """With ``release_children``: how many children this change left ready."""


_JOB_FIELDS = tuple(Job._meta.concrete_fields)
_JOB_COLUMNS = tuple(f.column for f in _JOB_FIELDS)
_JOB_ATTNAMES = [f.attname for f in _JOB_FIELDS]
#: What an event needs, in ``Change``'s order.
_EVENT_COLUMNS = ("id", "owner_id", "type", "priority", "status", "attempt", "batch_id")


_JSON_COLUMNS = frozenset(
    f.column for f in Job._meta.concrete_fields if f.get_internal_type() == "JSONField"
)


def _adapt(column: str, value: Any) -> Any:
    """JSON columns get JSON text (so a handler returning "done" or 5 stores valid JSON)."""
    if column in _JSON_COLUMNS and value is not None:
        return Json(value)
    return value


def transition(
    job_id: UUID | str,
    *,
    from_: JobStatus | str | Iterable[JobStatus],
    to: JobStatus,
    attempt: int | None = None,
    message: str = "",
    level: str = LogLevel.INFO,
    fields: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    release_children: bool = False,
    announce: bool = True,
    with_job: bool = False,
) -> Change | None:
    """Move one job from ``from_`` to ``to``; return the change, or None if the CAS lost.

    ``release_children`` (for a completion) also takes one off the ``pending_parents`` of
    each child, in the same statement; the change's ``released`` counts the children that
    are now ready (pending with no unfinished parent)."""
    changes = transition_many(
        [job_id],
        from_=from_,
        to=to,
        attempt=attempt,
        message=message,
        level=level,
        fields=fields,
        context=context,
        release_children=release_children,
        announce=announce,
        with_job=with_job,
    )
    return changes[0] if changes else None


def transition_many(
    job_ids: Sequence[UUID | str],
    *,
    from_: JobStatus | str | Iterable[JobStatus],
    to: JobStatus,
    attempt: int | None = None,
    message: str = "",
    level: str = LogLevel.INFO,
    fields: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    release_children: bool = False,
    announce: bool = True,
    with_job: bool = False,
) -> list[Change]:
    """Move every job of ``job_ids`` that is in one of ``from_`` to ``to``, in one statement.

    ``fields`` are extra columns to set, as values or ``SQL`` expressions. ``attempt``, when
    given, fences the update to that attempt number (a stale worker cannot move a newer one).
    Returns the changes that happened, one per job that matched. After the commit their
    events go out in one Redis round trip; with ``announce=False`` the caller publishes them
    (``events.publish_on_commit``, which can add its own commands to that round trip).
    ``with_job`` also returns each job's whole row (``Change.job``); otherwise only what an
    event needs comes back.
    """
    sources = [from_] if isinstance(from_, str) else list(from_)
    for source in sources:
        if to not in ALLOWED[JobStatus(source)]:
            raise InvalidTransition(JobStatus(source), to)
    if not job_ids:
        return []
    if release_children and len(job_ids) != 1:
        # A child in the same set would be updated twice by one statement.
        raise ValueError("release_children is for one job at a time")
    assignments = ["status = %s", "updated_at = now()"]
    params: list[Any] = [str(to)]
    for column, value in (fields or {}).items():
        if isinstance(value, SQL):
            assignments.append(f'"{column}" = {value.text.replace("%", "%%")}')
        else:
            assignments.append(f'"{column}" = %s')
            params.append(_adapt(column, value))
    where = ["id = ANY(%s::uuid[])", "status = ANY(%s)"]
    where_params: list[Any] = [[str(i) for i in job_ids], [str(s) for s in sources]]
    if attempt is not None:
        where.append("attempt = %s")
        where_params.append(attempt)
    log_params = [str(level), message, str(to), str(to), Json(dict(context or {}))]
    # One query string is one transaction by itself: outside an atomic block it runs in
    # autocommit (one round trip instead of BEGIN, statement, COMMIT); inside one, it joins
    # the caller's transaction and its events wait for that commit.
    with connection.cursor() as cursor:
        statements: list[tuple[str, list[Any]]] = []
        if release_children:
            # Locks the job before the statement below starts (see _statement).
            statements.append((_LOCK_JOBS, where_params[:1]))
        statements.append(
            (
                _statement(tuple(where), tuple(assignments), release_children, with_job),
                where_params + params + log_params,
            )
        )
        sql.execute(cursor, statements)
        rows = cursor.fetchall()
    changes = [_change(row, with_job) for row in rows]
    if changes and announce:
        events.publish_on_commit(changes)
    return changes


_LOCK_JOBS = f"SELECT id FROM {Job._meta.db_table} WHERE id = ANY(%s::uuid[]) FOR UPDATE"


@functools.lru_cache(maxsize=256)
def _statement(
    where: tuple[str, ...], assignments: tuple[str, ...], children: bool, with_job: bool
) -> str:
    """One round trip: lock the rows (remembering their old status), swap them, and write
    one log row each. Table and column names come from the models, never from input.

    With ``children``, the changed job's children are locked in id order (like every
    multi-row change here, so a completion cannot deadlock with a failing parent cancelling
    the same children) and their ``pending_parents`` decremented; the last column counts
    those left ready. The caller must lock the job's row first (``_LOCK_JOBS``), by a
    statement of its own in the same query string (one round trip, one transaction): a
    statement reads the edges as of its start, and a child being submitted holds the parent
    ``FOR SHARE`` until it commits, so only a statement that starts after the lock sees that
    child's edge."""
    table, logs = Job._meta.db_table, ExecutionLog._meta.db_table
    edges = JobDependency._meta.db_table
    columns = ", ".join(f"j.{c}" for c in (_JOB_COLUMNS if with_job else _EVENT_COLUMNS))
    release = (
        (
            f", kids AS (SELECT k.id FROM {table} AS k WHERE k.id IN (SELECT e.job_id FROM "
            f"{edges} AS e JOIN upd ON e.depends_on_id = upd.id) ORDER BY k.id FOR UPDATE), "
            f"dec AS (UPDATE {table} AS k SET pending_parents = k.pending_parents - 1 FROM kids "
            "WHERE k.id = kids.id RETURNING k.pending_parents, k.status) "
        )
        if children
        else " "
    )
    ready = (
        f", (SELECT count(*) FROM dec WHERE pending_parents = 0 AND status = '{S.PENDING}')"
        if children
        else ", 0"
    )
    return (
        f"WITH old AS (SELECT id, status FROM {table} WHERE {' AND '.join(where)} "
        f"ORDER BY id FOR UPDATE), "
        f"upd AS (UPDATE {table} AS j SET {', '.join(assignments)} FROM old "
        f"WHERE j.id = old.id RETURNING old.status AS previous_status, {columns}), "
        f"log AS (INSERT INTO {logs} (job_id, attempt, level, message, from_status, to_status, "
        f"context, created_at) SELECT upd.id, upd.attempt, %s, "
        f"COALESCE(NULLIF(%s, ''), upd.previous_status || ' -> ' || %s), upd.previous_status, "
        f"%s, %s, now() FROM upd RETURNING id, job_id, created_at)"
        f"{release}SELECT upd.*, log.id, log.created_at{ready} "
        "FROM upd JOIN log ON log.job_id = upd.id"
    )


def _change(row: Sequence[Any], with_job: bool) -> Change:
    previous, values, (log_id, logged_at, released) = row[0], row[1:-3], row[-3:]
    job = None
    if with_job:
        job = Job.from_db(
            connection.alias,
            _JOB_ATTNAMES,
            [_from_db(field, value) for field, value in zip(_JOB_FIELDS, values, strict=True)],
        )
        values = [getattr(job, name) for name in _EVENT_COLUMNS]  # columns are attnames here
    job_id, owner_id, type_, priority, status, attempt, batch_id = values
    return Change(
        job_id=job_id,
        owner_id=owner_id,
        type=type_,
        priority=priority,
        status=status,
        previous_status=previous,
        attempt=attempt,
        batch_id=batch_id,
        log_id=log_id,
        timestamp=logged_at,
        job=job,
        released=released,
    )


def _from_db(field: Any, value: Any) -> Any:
    converter = getattr(field, "from_db_value", None)
    return converter(value, None, connection) if converter and value is not None else value
