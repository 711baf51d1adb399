"""Cancel, retry and re-drive jobs from the console: what each means for each status, and
doing it through the engine.

- **cancel**: a pending, queued or retrying job ends ``cancelled`` at once; a running one is
  asked to stop (``jobs.engine.cancel.job_cancel``, as ``PATCH /jobs/{id}/cancel``). Its
  pending descendants are cancelled with it.
- **retry**: a ``retrying`` job runs now (its backoff is skipped: ``jobs.engine.retry_now``);
  a ``failed`` job is re-driven alone, with a fresh budget of attempts (its descendants that
  its failure cancelled stay cancelled).
- **redrive**: a ``failed`` job is re-driven with the descendants its failure cancelled, as
  ``POST /admin/dlq/{id}/retry`` does (``jobs.engine.deadletter.dead_letter_redrive``).

Every other status is skipped, with the reason. A plan is computed twice: for the
confirmation (how many of the selected jobs the action applies to) and again when it is
confirmed, so a job that changed meanwhile is skipped then, not forced. The change and its
audit record (``admin_api.audit.record``) commit in one transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.db import transaction

from admin_api import audit
from jobs.engine import deadletter, retry_now
from jobs.engine.cancel import job_cancel
from jobs.errors import JobConflict
from jobs.models import Job, JobStatus

S = JobStatus
ACTIONS = {"cancel": "Cancel", "retry": "Retry now", "redrive": "Re-drive"}
#: At most this many jobs per action ("all that match" takes the newest this many).
BULK_LIMIT = 500

_FINISHED = "already finished"
_WAITING = "already waiting or running: nothing to retry"
#: Why an action does not apply to a status (statuses absent here are ones it applies to).
SKIP_REASONS: dict[str, dict[str, str]] = {
    "cancel": {S.COMPLETED: _FINISHED, S.FAILED: _FINISHED, S.CANCELLED: _FINISHED},
    "retry": {
        S.PENDING: _WAITING,
        S.QUEUED: _WAITING,
        S.RUNNING: _WAITING,
        S.COMPLETED: "completed: clone it to run it again",
        S.CANCELLED: "cancelled: it comes back when the failed ancestor that cancelled it is "
        "re-driven; otherwise clone it",
    },
    "redrive": {
        S.PENDING: "not failed: only a failed job can be re-driven",
        S.QUEUED: "not failed: only a failed job can be re-driven",
        S.RUNNING: "not failed: only a failed job can be re-driven",
        S.RETRYING: "not failed yet: use retry now",
        S.COMPLETED: "completed: clone it to run it again",
        S.CANCELLED: "cancelled: it comes back when the failed ancestor that cancelled it is "
        "re-driven; otherwise clone it",
    },
}
#: What the action does to a job of each status it applies to.
EFFECTS: dict[str, dict[str, str]] = {
    "cancel": {
        S.PENDING: "cancelled now",
        S.QUEUED: "cancelled now",
        S.RETRYING: "cancelled now",
        S.RUNNING: "asked to stop",
    },
    "retry": {S.RETRYING: "runs now", S.FAILED: "re-driven alone"},
    "redrive": {S.FAILED: "re-driven with the descendants its failure cancelled"},
}


def applies(action: str, status: str) -> bool:
    return status in EFFECTS[action]


@dataclass
class Plan:
    action: str
    selected: int
    applicable: list[UUID] = field(default_factory=list)
    #: How many applicable jobs of each status, with what happens to them.
    effects: Counter[str] = field(default_factory=Counter)
    #: How many skipped for each reason.
    skipped: Counter[str] = field(default_factory=Counter)
    by_status: dict[UUID, str] = field(default_factory=dict)

    @property
    def effect_lines(self) -> list[tuple[str, int]]:
        return sorted(self.effects.items())

    @property
    def skip_lines(self) -> list[tuple[str, int]]:
        return sorted(self.skipped.items())


def plan(action: str, jobs: Sequence[tuple[UUID, str]]) -> Plan:
    """Sort ``(id, status)`` pairs into those ``action`` applies to and those it skips."""
    result = Plan(action=action, selected=len(jobs))
    for job_id, status in jobs:
        if applies(action, status):
            result.applicable.append(job_id)
            result.by_status[job_id] = status
            result.effects[f"{status}: {EFFECTS[action][status]}"] += 1
        else:
            result.skipped[f"{status}: {SKIP_REASONS[action][status]}"] += 1
    return result


@dataclass(frozen=True)
class Outcome:
    touched: list[UUID]
    """The selected jobs the action changed."""
    revived: list[UUID]
    """Descendants a re-drive brought back with them."""
    missed: int
    """Applicable at the confirmation, changed meanwhile, so skipped."""


def apply(user: Any, the_plan: Plan, target: str) -> Outcome:
    """Do ``the_plan`` and record it (who, what, how many), in one transaction."""
    with transaction.atomic():
        outcome = _DO[the_plan.action](user, the_plan)
        audit.record(
            user,
            the_plan.action,
            target,
            job_ids=[*outcome.touched, *outcome.revived],
            detail={
                "selected": the_plan.selected,
                "changed": len(outcome.touched),
                "revived": len(outcome.revived),
                "skipped": the_plan.selected - len(outcome.touched),
            },
        )
    return outcome


def _cancel(user: Any, the_plan: Plan) -> Outcome:
    touched: list[UUID] = []
    reason = f"cancelled by {user.get_username()} from the console"
    for job_id in the_plan.applicable:
        try:
            job_cancel(job=Job(id=job_id), reason=reason)
        except JobConflict:
            continue  # it ended meanwhile
        touched.append(job_id)
    return Outcome(touched, [], len(the_plan.applicable) - len(touched))


def _retry(user: Any, the_plan: Plan) -> Outcome:
    waiting = [i for i in the_plan.applicable if the_plan.by_status[i] == S.RETRYING]
    failed = [i for i in the_plan.applicable if the_plan.by_status[i] == S.FAILED]
    hurried = retry_now.retry_now(job_ids=waiting)
    redriven = deadletter.dead_letter_redrive(job_ids=failed, by=user, descendants=False)
    touched = [*hurried, *redriven.requeued]
    return Outcome(touched, [], len(the_plan.applicable) - len(touched))


def _redrive(user: Any, the_plan: Plan) -> Outcome:
    redriven = deadletter.dead_letter_redrive(job_ids=the_plan.applicable, by=user)
    missed = len(the_plan.applicable) - len(redriven.requeued)
    return Outcome(list(redriven.requeued), list(redriven.revived), missed)


_DO = {"cancel": _cancel, "retry": _retry, "redrive": _redrive}
