"""Recording operator actions: the audit row and a line in each touched job's log."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from django.db import transaction

from admin_api.models import OperatorAction
from jobs.models import ExecutionLog, Job, LogLevel


def record(
    actor: Any,
    action: str,
    target: str,
    *,
    job_ids: Iterable[UUID | str] = (),
    count: int | None = None,
    detail: Mapping[str, Any] | None = None,
) -> OperatorAction:
    """Record that ``actor`` did ``action`` to ``target``. Call it inside the transaction that
    made the change, so the record and the change commit or roll back together. Each job in
    ``job_ids`` gets a log line naming the actor and the action; ``count`` defaults to the
    number of those jobs."""
    ids = list(dict.fromkeys(str(j) for j in job_ids))
    name = getattr(actor, "get_username", lambda: "")() or "(system)"
    with transaction.atomic():
        entry = OperatorAction.objects.create(
            actor=actor if getattr(actor, "pk", None) else None,
            actor_name=name,
            action=action,
            target=target[:300],
            count=len(ids) if count is None else count,
            detail=dict(detail or {}),
        )
        message = f"operator {name}: {action}" + (f" ({target})" if len(ids) > 1 else "")
        attempts = dict(Job.objects.filter(id__in=ids).values_list("id", "attempt"))
        ExecutionLog.objects.bulk_create(
            ExecutionLog(
                job_id=job_id,
                attempt=attempt,
                level=LogLevel.INFO,
                message=message,
                context={"operator_action": entry.id, "actor": name, "action": action},
            )
            for job_id, attempt in attempts.items()
        )
    return entry
