"""The only code that writes ``Job.status``: one named function per move of the state machine.

``ALLOWED`` is the state machine; each function below runs one statement of
``jobs.engine.statements`` (a compare-and-swap that writes the job's log row in the same
statement) and is checked against ``ALLOWED`` when this module is imported. A function that
matched no row returns None (or an empty list): another process got there first, and the
caller must not act as if the change happened. Outside an atomic block a change is one round
trip in autocommit; inside one it joins the caller's transaction. Its events are published
once the transaction commits (``complete_attempt`` leaves that to its caller, who sends them
with the lease release in one Redis round trip).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection
from psycopg2.extras import Json

from jobs.engine import prepared, statements
from jobs.live import events
from jobs.live.events import Change
from jobs.models import Job, JobStatus

S = JobStatus
ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    S.PENDING: frozenset({S.QUEUED, S.CANCELLED, S.FAILED}),
    S.QUEUED: frozenset({S.RUNNING, S.CANCELLED}),
    # -> pending: handed back, uncharged, by a worker that stops before the attempt ends.
    S.RUNNING: frozenset({S.COMPLETED, S.RETRYING, S.FAILED, S.CANCELLED, S.PENDING}),
    S.RETRYING: frozenset({S.QUEUED, S.CANCELLED, S.FAILED}),
    S.FAILED: frozenset({S.PENDING}),  # re-drive from the dead-letter queue
    S.COMPLETED: frozenset(),
    # Revived when the failed ancestor whose failure cancelled it is re-driven.
    S.CANCELLED: frozenset({S.PENDING}),
}


class InvalidTransition(Exception):
    def __init__(self, from_: JobStatus, to: JobStatus) -> None:
        super().__init__(f"a job cannot go from {from_} to {to}")
        self.from_ = from_
        self.to = to


@dataclass(frozen=True)
class Move:
    """A move of the state machine: the statuses it starts from, where it goes, and the
    statement that makes it."""

    name: str
    sources: tuple[JobStatus, ...]
    target: JobStatus
    statement: str


MOVES = {
    move.name: move
    for move in (
        Move("admit_jobs", (S.PENDING, S.RETRYING), S.QUEUED, statements.ADMIT_JOBS),
        Move("start_attempt", (S.QUEUED,), S.RUNNING, statements.START_ATTEMPT),
        Move("complete_attempt", (S.RUNNING,), S.COMPLETED, statements.COMPLETE_ATTEMPT),
        Move("retry_attempt", (S.RUNNING,), S.RETRYING, statements.RETRY_ATTEMPT),
        Move("fail_attempt", (S.RUNNING,), S.FAILED, statements.FAIL_ATTEMPT),
        Move("hand_back_attempt", (S.RUNNING,), S.PENDING, statements.HAND_BACK_ATTEMPT),
        Move("fail_waiting", (S.PENDING, S.RETRYING), S.FAILED, statements.FAIL_WAITING),
        Move("cancel_attempt", (S.RUNNING,), S.CANCELLED, statements.CANCEL_ATTEMPT),
        Move(
            "cancel_waiting",
            (S.PENDING, S.QUEUED, S.RETRYING),
            S.CANCELLED,
            statements.CANCEL_WAITING,
        ),
        Move("cancel_descendants", (S.PENDING,), S.CANCELLED, statements.CANCEL_DESCENDANTS),
        Move("redrive_jobs", (S.FAILED,), S.PENDING, statements.REDRIVE_JOBS),
        Move("revive_descendants", (S.CANCELLED,), S.PENDING, statements.REVIVE_DESCENDANTS),
    )
}


def check_moves(moves: Iterable[Move]) -> None:
    """Raise InvalidTransition for the first move that ``ALLOWED`` does not permit."""
    for move in moves:
        for source in move.sources:
            if move.target not in ALLOWED[source]:
                raise InvalidTransition(source, move.target)


check_moves(MOVES.values())


@dataclass(frozen=True)
class Completion:
    change: Change
    ready_children: int
    """How many children this completion left ready (pending, no unfinished parent)."""


def admit_jobs(*, job_ids: Sequence[UUID]) -> list[Change]:
    """pending | retrying -> queued with the next attempt number (their leases are booked)."""
    return _announced(_move("admit_jobs", job_ids=[str(i) for i in job_ids]))


def start_attempt(*, job_id: UUID | str, attempt: int, worker: str) -> Job | None:
    """queued -> running for this attempt; the job's row as it now is, or None for a stale
    or duplicate delivery."""
    rows = _move(
        "start_attempt",
        job_id=str(job_id),
        attempt=attempt,
        worker=worker[:255],
        message=f"attempt {attempt} started on {worker}",
        context=Json({"worker": worker}),
    )
    _announced(rows)
    return _job(rows[0]) if rows else None


def complete_attempt(*, job_id: UUID | str, attempt: int, result: Any) -> Completion | None:
    """running -> completed, releasing the children for which this was the last parent.
    Publishes nothing: the caller sends the event with its lease release."""
    with connection.cursor() as cursor:
        prepared.execute(
            cursor,
            (statements.LOCK_JOB, {"job_id": str(job_id)}),
            (
                MOVES["complete_attempt"].statement,
                {
                    "job_id": str(job_id),
                    "attempt": attempt,
                    "result": None if result is None else Json(result),
                    "message": f"attempt {attempt} completed",
                },
            ),
        )
        rows = prepared.rows(cursor)
    if not rows:
        return None
    return Completion(change=_change(rows[0]), ready_children=rows[0]["ready_children"])


def retry_attempt(
    *,
    job_id: UUID | str,
    attempt: int,
    error: str,
    next_attempt_at: datetime,
    message: str,
    context: Mapping[str, Any],
) -> Change | None:
    """running -> retrying: wait until ``next_attempt_at`` for another attempt."""
    return _first(
        _move(
            "retry_attempt",
            job_id=str(job_id),
            attempt=attempt,
            error=error,
            next_attempt_at=next_attempt_at,
            message=message,
            context=Json(dict(context)),
        )
    )


def fail_attempt(
    *, job_id: UUID | str, attempt: int, error: str, message: str, context: Mapping[str, Any]
) -> Change | None:
    """running -> failed (the caller writes the DeadLetter row in the same transaction)."""
    return _first(
        _move(
            "fail_attempt",
            job_id=str(job_id),
            attempt=attempt,
            error=error,
            message=message,
            context=Json(dict(context)),
        )
    )


def hand_back_attempt(
    *, job_id: UUID | str, attempt: int, worker: str, message: str, context: Mapping[str, Any]
) -> Change | None:
    """running -> pending, not charged against ``max_attempts``: ``worker`` (the name its
    start recorded) gives the attempt back unfinished. None if the attempt is not running any
    more, runs on another worker, or its cancel was requested."""
    return _first(
        _move(
            "hand_back_attempt",
            job_id=str(job_id),
            attempt=attempt,
            worker=worker[:255],
            message=message,
            context=Json(dict(context)),
        )
    )


def fail_waiting(
    *, job_id: UUID | str, error: str, message: str, context: Mapping[str, Any]
) -> Change | None:
    """pending | retrying -> failed, for a job that can never be admitted."""
    return _first(
        _move(
            "fail_waiting",
            job_id=str(job_id),
            error=error,
            message=message,
            context=Json(dict(context)),
        )
    )


def cancel_attempt(*, job_id: UUID | str, attempt: int, message: str) -> Change | None:
    """running -> cancelled: the attempt stopped because its job was cancelled."""
    return _first(_move("cancel_attempt", job_id=str(job_id), attempt=attempt, message=message))


def cancel_waiting(*, job_id: UUID | str, attempt: int, message: str) -> Change | None:
    """pending | queued | retrying -> cancelled, if still at ``attempt``."""
    return _first(_move("cancel_waiting", job_id=str(job_id), attempt=attempt, message=message))


def cancel_descendants(*, job_ids: Sequence[UUID], reason: str) -> list[Change]:
    """pending -> cancelled for each of ``job_ids`` still pending."""
    if not job_ids:
        return []
    rows = _move("cancel_descendants", job_ids=[str(i) for i in job_ids], reason=reason)
    return _announced(rows)


def redrive_jobs(*, job_ids: Sequence[UUID | str]) -> list[Change]:
    """failed -> pending with a fresh budget of attempts."""
    return _announced(_move("redrive_jobs", job_ids=[str(i) for i in job_ids]))


def revive_descendants(*, job_ids: Sequence[UUID], reason: str) -> list[Change]:
    """cancelled -> pending for each of ``job_ids`` that an ancestor's failure cancelled."""
    if not job_ids:
        return []
    rows = _move("revive_descendants", job_ids=[str(i) for i in job_ids], message=reason)
    return _announced(rows)


def _move(name: str, **parameters: Any) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        prepared.execute(cursor, (MOVES[name].statement, parameters))
        return prepared.rows(cursor)


def _first(rows: list[dict[str, Any]]) -> Change | None:
    changes = _announced(rows)
    return changes[0] if changes else None


def _announced(rows: list[dict[str, Any]]) -> list[Change]:
    changes = [_change(row) for row in rows]
    if changes:
        events.publish_on_commit(changes)
    return changes


def _change(row: Mapping[str, Any]) -> Change:
    return Change(
        job_id=row["id"],
        owner_id=row["owner_id"],
        type=row["type"],
        priority=row["priority"],
        status=row["status"],
        previous_status=row["previous_status"],
        attempt=row["attempt"],
        batch_id=row["batch_id"],
        log_id=row["log_id"],
        timestamp=row["logged_at"],
    )


_JOB_FIELDS = tuple(Job._meta.concrete_fields)
#: Each field's column (concrete fields all have one).
_JOB_COLUMNS = tuple(str(f.column) for f in _JOB_FIELDS)


def _job(row: Mapping[str, Any]) -> Job:
    """A Job instance from a row of every column, converted as Django's own reads are."""
    values = []
    for field, column in zip(_JOB_FIELDS, _JOB_COLUMNS, strict=True):
        value = row[column]
        converter = getattr(field, "from_db_value", None)
        values.append(
            converter(value, None, connection) if converter and value is not None else value
        )
    return Job.from_db(connection.alias, [f.attname for f in _JOB_FIELDS], values)
