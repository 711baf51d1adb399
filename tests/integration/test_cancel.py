"""``jobs.engine.cancel``: every way to ``cancelled``, each written in the job's log."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.engine import ledger
from jobs.engine.admission import admit_ready
from jobs.engine.cancel import cancel_running_attempt, job_cancel
from jobs.errors import JobConflict
from jobs.models import ExecutionLog, Job, JobStatus
from tests.factories import move_to


@pytest.mark.django_db
def test_a_cancel_request_of_a_running_job_is_written_in_its_log(job_factory: Any) -> None:
    job = move_to(job_factory(), JobStatus.RUNNING)
    before = ExecutionLog.objects.filter(job=job).count()
    after = job_cancel(job=job)
    assert (after.status, after.cancel_requested) == (JobStatus.RUNNING, True)
    logs = ExecutionLog.objects.filter(job=job).order_by("id")
    assert logs.count() == before + 1
    request = logs.last()
    assert request is not None
    assert request.message == "cancel requested: cancelled by its owner"
    assert (request.from_status, request.to_status, request.attempt) == ("", "", job.attempt)


@pytest.mark.django_db
def test_the_running_attempt_then_ends_cancelled_with_its_descendants(job_factory: Any) -> None:
    parent = job_factory()
    child = job_factory(depends_on=[parent])
    running = move_to(parent, JobStatus.RUNNING)
    job_cancel(job=running)
    assert cancel_running_attempt(job_id=running.id, attempt=running.attempt)
    assert Job.objects.get(id=parent.id).status == JobStatus.CANCELLED
    assert Job.objects.get(id=child.id).status == JobStatus.CANCELLED
    assert not cancel_running_attempt(job_id=running.id, attempt=running.attempt)  # once


@pytest.mark.django_db
def test_cancelling_a_queued_job_frees_its_lease(
    job_factory: Any, django_capture_on_commit_callbacks: Any
) -> None:
    job = job_factory(cpu_units=2)
    assert admit_ready() == 1
    job.refresh_from_db()
    assert ledger.ledger_usage().cpu_units == 2
    with django_capture_on_commit_callbacks(execute=True):
        cancelled = job_cancel(job=job)
    assert cancelled.status == JobStatus.CANCELLED
    assert ledger.ledger_usage().cpu_units == 0
    log = ExecutionLog.objects.filter(job=job).latest("id")
    assert (log.from_status, log.to_status) == (JobStatus.QUEUED, JobStatus.CANCELLED)


@pytest.mark.django_db
@pytest.mark.parametrize("status", [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED])
def test_a_terminal_job_cannot_be_cancelled(job_factory: Any, status: JobStatus) -> None:
    job = move_to(job_factory(), status)
    logs = ExecutionLog.objects.count()
    with pytest.raises(JobConflict):
        job_cancel(job=job)
    assert ExecutionLog.objects.count() == logs
