"""What the dashboard shows beside the jobs: why a job waits, the schedules, the limit rules.

Each is read when the page is rendered (a snapshot; the socket updates only job states):

- a job's ``waiting_on``, the same reasons ``GET /jobs/{id}`` gives (``jobs.engine.waiting``),
  each with a sentence for people, so the page and the API never disagree on why;
- the schedules the user may see (staff: all) with their next fire time and their last fire's
  outcome, and the status of the job it submitted;
- for staff only, the limit rules with their current use (``limits.rule_in_use``: the leases
  per limit name). The names under a pattern rule are other tenants' keys, which is why a
  user who is not staff does not see them; the rules are staff's to manage anyway.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import redis
from django.db.models import F, OuterRef, QuerySet, Subquery

from admin_api import access
from jobs.engine import limits, waiting
from jobs.models import Job, Limit
from jobs.schedules.models import Schedule, ScheduleFire

#: Rows of the schedules and limits panels; and the busiest names shown per pattern rule.
SCHEDULE_ROWS = 50
LIMIT_ROWS = 50
NAMES_PER_RULE = 10


def waiting_lines(job: Job) -> list[dict[str, Any]] | None:
    """``waiting_on`` of ``job``, each reason with ``text``; None when it is not waiting."""
    reasons = waiting.waiting_on(job)
    if reasons is None:
        return None
    return [{**reason, "text": describe(reason)} for reason in reasons]


def describe(reason: dict[str, Any]) -> str:
    """One reason as a sentence (the parents' ids are linked by the template)."""
    kind = reason["reason"]
    if kind == "parents":
        return f"{len(reason['job_ids'])} parent job(s) not completed yet:"
    if kind == "run_at":
        return f"its run_at: due at {_when(reason['at'])}"
    if kind == "retry_backoff":
        return f"the retry backoff: attempt {reason['next_attempt']} at {_when(reason['at'])}"
    if kind == "no_live_pool":
        return f"{reason['message']} (pool {reason['pool']})"
    if kind == "limit" and reason["kind"] == "concurrency":
        return (
            f"limit {reason['rule']} on {reason['name']}: {reason['in_use']} of "
            f"{reason['max_concurrency']} queued or running"
        )
    if kind == "limit":
        return (
            f"limit {reason['rule']} ({reason['rate']}) on {reason['name']}: "
            f"{reason['tokens']:.2f} of the 1 token it needs"
        )
    if kind == "paused":
        what = (
            f"type {reason['job_type']}"
            if reason["pause"] == "type"
            else f"priority {reason['priority']}"
        )
        return f"paused: {what} is paused (since {_when(reason['since'])}); it waits until resumed"
    if kind == "capacity":
        needs = reason["needs"]
        return (
            f"capacity: needs {needs['cpu_units']} CPU, {needs['memory_mb']} MB; "
            f"{reason['cpu_units_free']} CPU, {reason['memory_mb_free']} MB free"
        )
    return str(kind)


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def visible_schedules(user: Any) -> QuerySet[Schedule]:
    """Every schedule for operators and on-call viewers (``admin_api.access``), else one's own."""
    if access.sees_everything(user):
        return Schedule.objects.all()
    return Schedule.objects.filter(owner=user)


def schedule_rows(user: Any) -> list[dict[str, Any]]:
    """The schedules, soonest due first (paused and finished ones last), each with its last
    fire (newest due time; manual triggers count) and that job's status now. Two queries."""
    last = ScheduleFire.objects.filter(schedule=OuterRef("id")).order_by("-due_at", "-id")
    rows = (
        visible_schedules(user)
        .annotate(
            last_due_at=Subquery(last.values("due_at")[:1]),
            last_outcome=Subquery(last.values("outcome")[:1]),
            last_job_id=Subquery(last.values("job_id")[:1]),
        )
        .order_by(F("next_fire_at").asc(nulls_last=True), "name", "id")[:SCHEDULE_ROWS]
    )
    schedules = list(rows)
    job_ids = [s.last_job_id for s in schedules if s.last_job_id]
    statuses = dict(Job.objects.filter(id__in=job_ids).values_list("id", "status"))
    return [
        {
            "schedule": s,
            "every": s.cron or f"every {s.interval_seconds} s",
            "last_due_at": s.last_due_at,
            "last_outcome": s.last_outcome,
            "last_job_id": s.last_job_id,
            "last_job_status": statuses.get(s.last_job_id),
        }
        for s in schedules
    ]


def limit_rows() -> list[dict[str, Any]]:
    """The limit rules with the leases per limit name they count now (the busiest
    ``NAMES_PER_RULE`` names of a pattern rule); ``in_use`` is None while Redis is down."""
    rows = []
    for rule in Limit.objects.order_by("key")[:LIMIT_ROWS]:
        try:
            in_use: dict[str, int] | None = limits.rule_in_use(rule.key)
        except redis.RedisError:
            in_use = None
        busiest = sorted((in_use or {}).items(), key=lambda item: (-item[1], item[0]))
        rows.append(
            {
                "rule": rule,
                "in_use": None if in_use is None else busiest[:NAMES_PER_RULE],
                "more": max(len(busiest) - NAMES_PER_RULE, 0),
            }
        )
    return rows
