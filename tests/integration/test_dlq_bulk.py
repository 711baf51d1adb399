"""Bulk re-drive of the dead-letter queue by filter: one transaction, only what matches."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.engine.deadletter import job_dead_letter_waiting
from jobs.models import DeadLetter, DeadLetterReason, Job, JobStatus

pytestmark = pytest.mark.django_db


def dead(job_factory: Any, *, type: str, reason: DeadLetterReason) -> Job:
    job = job_factory(type=type)
    assert job_dead_letter_waiting(job_id=job.id, reason=reason, error="boom")
    return job


def test_a_bulk_redrive_moves_only_the_matching_dead_letters(
    staff_api: Any, job_factory: Any
) -> None:
    lost = [dead(job_factory, type="noop", reason=DeadLetterReason.WORKER_LOST) for _ in range(3)]
    other_reason = dead(job_factory, type="noop", reason=DeadLetterReason.TIMEOUT)
    other_type = dead(job_factory, type="fail", reason=DeadLetterReason.WORKER_LOST)

    response = staff_api.post(
        "/admin/dlq/retry/", {"reason": "worker_lost", "type": "noop"}, format="json"
    )

    assert response.status_code == 200
    assert response.json() == {"requeued": 3, "revived": 0}
    statuses = dict(Job.objects.values_list("id", "status"))
    assert {statuses[j.id] for j in lost} == {JobStatus.PENDING}
    assert statuses[other_reason.id] == statuses[other_type.id] == JobStatus.FAILED
    letters = DeadLetter.objects.filter(job__in=lost)
    assert all(letter.requeued_at is not None for letter in letters)
    assert {letter.requeued_by_id for letter in letters} == {staff_api.user.pk}
    assert DeadLetter.objects.filter(requeued_at__isnull=True).count() == 2
    # A second bulk re-drive finds nothing left to move.
    again = staff_api.post(
        "/admin/dlq/retry/", {"reason": "worker_lost", "type": "noop"}, format="json"
    )
    assert again.json() == {"requeued": 0, "revived": 0}
