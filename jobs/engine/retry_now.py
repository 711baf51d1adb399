"""Retry now: a ``retrying`` job skips the rest of its backoff.

Not a status change (the job stays ``retrying``; admission moves it on): only its time gate,
``next_attempt_at``, becomes now, so the next dispatch admits it like any ready job. The rows
are locked in id order and re-checked under the lock, so a job that admission took meanwhile
(or that a cancel ended) is left alone and not counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from jobs.engine import wakeup
from jobs.models import ExecutionLog, Job, JobStatus, LogLevel


def retry_now(*, job_ids: Sequence[UUID | str]) -> list[UUID]:
    """End the backoff of those of ``job_ids`` still ``retrying``; the ids it applied to.
    Each gets a log line; a dispatch is requested after the commit."""
    with transaction.atomic():
        rows = list(
            Job.objects.select_for_update()
            .filter(id__in=list(job_ids), status=JobStatus.RETRYING)
            .order_by("id")
            .values_list("id", "attempt")
        )
        if not rows:
            return []
        ids = [job_id for job_id, _ in rows]
        now = timezone.now()
        Job.objects.filter(id__in=ids).update(next_attempt_at=now, updated_at=now)
        ExecutionLog.objects.bulk_create(
            ExecutionLog(
                job_id=job_id,
                attempt=attempt,
                level=LogLevel.INFO,
                message=f"retry now: attempt {attempt + 1} may start at once",
                context={"retry_now": True},
            )
            for job_id, attempt in rows
        )
        transaction.on_commit(wakeup.request_dispatch)
    return ids
