"""``jobs.engine.cancel``: every way to ``cancelled``, each written in the job's log."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from jobs.engine import ledger
from jobs.engine.admission import admit_ready
from jobs.engine.cancel import cancel_channel, cancel_running_attempt, job_cancel
from jobs.errors import JobConflict
from jobs.models import ExecutionLog, Job, JobStatus
from jobs.redis_client import get_redis
from tests.factories import move_to
from tests.harness import wait_until
from workers import runner
from workers.lease_keeper import keeper


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


def _listening() -> None:
    """This process's lease keeper is subscribed to the cancel channel (its listener thread
    subscribes once it has started): a probe lease's push reaches it."""
    probe = threading.Event()
    lease = keeper.watch("probe", 1, probe)

    def heard() -> bool:
        if not probe.is_set():
            get_redis().publish(cancel_channel(), lease)
        return probe.is_set()

    try:
        wait_until(heard, timeout=30, interval=0.05, message="the cancel listener to subscribe")
    finally:
        keeper.unwatch(lease)


@pytest.mark.django_db(transaction=True)
def test_a_cancel_pushed_as_soon_as_an_attempt_shows_running_reaches_its_handler(
    job_factory: Any, monkeypatch: Any
) -> None:
    """The push of a cancel requested right after the attempt's start committed, before the
    runner had returned from the start, is not lost: the attempt is watched before its start,
    so the handler's cancel event is already set when it begins (it used to be watched only
    after, the push found nothing to stop, and the handler ran until the fallback poll)."""
    job = job_factory(payload={"seconds": 60})
    assert admit_ready() == 1
    job.refresh_from_db()
    lease = ledger.lease_id(job.id, job.attempt)
    _listening()
    pushed = threading.Event()
    real_cancelled, real_start, real_execute = keeper._cancelled, runner.job_start, runner._execute

    def cancelled(message: dict[str, Any]) -> None:
        real_cancelled(message)
        if message["data"] in (lease, lease.encode()):
            pushed.set()

    def start_then_cancel(**kwargs: Any) -> Job | None:
        started = real_start(**kwargs)
        job_cancel(job=Job.objects.get(id=job.id))  # committed: the push goes out now
        assert pushed.wait(30), "the listener did not receive the push"
        return started

    at_start: list[bool] = []

    def execute(started: Job, cancel: threading.Event) -> Any:
        at_start.append(cancel.is_set())
        return real_execute(started, cancel)

    monkeypatch.setattr(keeper, "_cancelled", cancelled)
    monkeypatch.setattr(runner, "job_start", start_then_cancel)
    monkeypatch.setattr(runner, "_execute", execute)
    outcome = runner.run_attempt(str(job.id), job.attempt, worker="w@test")
    assert at_start == [True]
    assert outcome.status == JobStatus.CANCELLED
    assert Job.objects.get(id=job.id).status == JobStatus.CANCELLED
