"""A job's attempts, read from its log and its dead letters, and their timeline.

Where each fact is stored: an attempt starts with the log row that moves the job to
``running`` (its ``context.worker``); it ends with the next row of the same attempt that
moves it out of ``running`` (to completed, retrying, failed, cancelled, or handed back to
pending); a retried attempt's error and traceback are in that row's context
(``jobs.engine.attempts``), a last attempt's in the job's DeadLetter row (``attempts`` is
its number). Two queries, each bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from jobs.models import DeadLetter, ExecutionLog, Job, JobStatus

#: At most this many state changes are read (a job has at most 20 attempts per re-drive).
CHANGES = 1000
#: The narrowest bar, in percent of the timeline's width (an instant attempt still shows).
MIN_BAR = 0.5


@dataclass
class Attempt:
    number: int
    started_at: datetime
    worker: str
    ended_at: datetime | None = None
    outcome: str = JobStatus.RUNNING
    error: str = ""
    traceback: str = ""
    # Set by the timeline: where its bar starts and how long it is, in percent of the axis.
    left: float = 0.0
    width: float = 0.0

    @property
    def duration(self) -> timedelta | None:
        return None if self.ended_at is None else self.ended_at - self.started_at

    @property
    def duration_text(self) -> str:
        if self.duration is None:
            return "running"
        return f"{self.duration.total_seconds():.3f} s"


def attempts(job: Job) -> list[Attempt]:
    """Every attempt of ``job`` that started, oldest first."""
    changes = (
        ExecutionLog.objects.filter(job=job)
        .exclude(to_status="")
        .order_by("id")
        .values("attempt", "from_status", "to_status", "created_at", "context", "message")
    )[:CHANGES]
    found: dict[int, Attempt] = {}
    for row in changes:
        context: dict[str, Any] = row["context"] if isinstance(row["context"], dict) else {}
        if row["to_status"] == JobStatus.RUNNING:
            found[row["attempt"]] = Attempt(
                row["attempt"], row["created_at"], str(context.get("worker", ""))
            )
        elif row["from_status"] == JobStatus.RUNNING and row["attempt"] in found:
            attempt = found[row["attempt"]]
            attempt.ended_at, attempt.outcome = row["created_at"], row["to_status"]
            attempt.error = str(context.get("error", ""))
            attempt.traceback = str(context.get("traceback", ""))
            if not attempt.error and row["to_status"] != JobStatus.COMPLETED:
                attempt.error = row["message"]
    letters = DeadLetter.objects.filter(job=job, attempts__in=list(found)).values(
        "attempts", "error", "traceback"
    )
    for letter in letters:
        attempt = found[letter["attempts"]]
        attempt.error = letter["error"] or attempt.error
        attempt.traceback = letter["traceback"] or attempt.traceback
    return sorted(found.values(), key=lambda a: a.number)


@dataclass(frozen=True)
class Timeline:
    attempts: list[Attempt]
    start: datetime | None
    end: datetime | None


def timeline(found: list[Attempt]) -> Timeline:
    """Lay the attempts out on one time axis, from the first start to the last end (now, for
    one still running): each bar's start and length in percent of it (CSS draws them)."""
    if not found:
        return Timeline([], None, None)
    now = timezone.now()
    start = found[0].started_at
    end = max((a.ended_at or now) for a in found)
    span = max((end - start).total_seconds(), 1e-6)
    for attempt in found:
        offset = (attempt.started_at - start).total_seconds() / span * 100
        length = ((attempt.ended_at or now) - attempt.started_at).total_seconds() / span * 100
        attempt.width = round(max(MIN_BAR, length), 2)
        attempt.left = round(min(offset, 100 - attempt.width), 2)
    return Timeline(found, start, end)
