"""The lifecycle services against the real database and Redis: fencing, releases, cascades,
and the races between a new edge and a completing parent."""

from __future__ import annotations

import threading
from functools import partial
from typing import Any

import pytest
from django.db import connection

from jobs.api.submit import job_add_dependencies, job_submit
from jobs.engine import admission, ledger, wakeup
from jobs.engine.attempts import job_complete, job_fail_attempt, job_start
from jobs.engine.cancel import job_cancel
from jobs.engine.deadletter import dead_letter_requeue
from jobs.models import DeadLetter, DeadLetterReason, Job, JobDependency, JobStatus
from tests.factories import make_spec

pytestmark = pytest.mark.django_db


def admit(job: Job) -> Job:
    admission.admit_ready()
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    return job


def test_a_late_result_from_a_superseded_attempt_is_ignored(job_factory: Any) -> None:
    job = admit(job_factory(max_attempts=3))
    assert job_start(job_id=job.id, attempt=1, worker="w1") is not None
    assert (
        job_fail_attempt(
            job_id=job.id, attempt=1, error="lost", reason=DeadLetterReason.WORKER_LOST
        )
        == JobStatus.RETRYING
    )
    Job.objects.filter(id=job.id).update(next_attempt_at=None)  # due now, not a status write
    job = admit(job)
    assert job.attempt == 2
    assert job_start(job_id=job.id, attempt=2, worker="w2") is not None
    # Attempt 1's worker comes back from the dead with a result: it must change nothing.
    assert job_complete(job_id=job.id, attempt=1, result={"stale": True}) is False
    assert job_fail_attempt(job_id=job.id, attempt=1, error="stale") is None
    assert job_start(job_id=job.id, attempt=1, worker="w1") is None
    job.refresh_from_db()
    assert (job.status, job.attempt, job.result) == (JobStatus.RUNNING, 2, None)
    assert job_complete(job_id=job.id, attempt=2, result={"fresh": True}) is True
    job.refresh_from_db()
    assert (job.status, job.result) == (JobStatus.COMPLETED, {"fresh": True})


def test_a_result_of_any_json_type_is_stored(job_factory: Any) -> None:
    for result in ("done", 5, [1, "a"], None, True):
        job = admit(job_factory())
        job_start(job_id=job.id, attempt=1, worker="w")
        assert job_complete(job_id=job.id, attempt=1, result=result)
        job.refresh_from_db()
        assert job.result == result


@pytest.mark.django_db(transaction=True)
def test_cancelling_a_queued_job_releases_its_reservation(job_factory: Any) -> None:
    job = admit(job_factory(cpu_units=3, memory_mb=300))
    assert ledger.ledger_usage().cpu_units == 3
    job_cancel(job=job)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert ledger.ledger_usage().cpu_units == 0 and ledger.ledger_usage().leases == 0
    # Its message is still in the broker: delivering it must not start the job.
    assert job_start(job_id=job.id, attempt=1, worker="w") is None


@pytest.mark.django_db(transaction=True)
def test_completion_frees_the_lease_and_releases_the_last_waiting_child(job_factory: Any) -> None:
    a = admit(job_factory())
    b = job_factory()
    admit(b)
    child = job_factory(depends_on=[a, b])
    assert Job.objects.get(id=child.id).pending_parents == 2
    job_start(job_id=a.id, attempt=1, worker="w")
    job_complete(job_id=a.id, attempt=1, result=None)
    child.refresh_from_db()
    assert (child.pending_parents, child.status) == (1, JobStatus.PENDING)
    # Freed capacity only: the completion asked the scheduler for a dispatch.
    assert wakeup.wait_for_request(0.01) is True
    job_start(job_id=b.id, attempt=1, worker="w")
    job_complete(job_id=b.id, attempt=1, result=None)
    # The last parent's completion admitted the child itself, without the scheduler.
    child.refresh_from_db()
    assert (child.pending_parents, child.status) == (0, JobStatus.QUEUED)
    assert ledger.ledger_usage().leases == 1


def test_a_dead_lettered_job_is_redriven_with_a_fresh_budget(job_factory: Any) -> None:
    job = admit(job_factory(max_attempts=1))
    job_start(job_id=job.id, attempt=1, worker="w")
    assert job_fail_attempt(job_id=job.id, attempt=1, error="boom") == JobStatus.FAILED
    assert DeadLetter.objects.get(job=job).reason == DeadLetterReason.MAX_ATTEMPTS
    assert dead_letter_requeue(job_id=job.id) is True
    assert dead_letter_requeue(job_id=job.id) is False  # already out of the DLQ
    job.refresh_from_db()
    assert (job.status, job.attempt, job.attempt_offset, job.error) == (JobStatus.PENDING, 1, 1, "")
    job = admit(job)
    job_start(job_id=job.id, attempt=2, worker="w")
    # max_attempts=1 again: this attempt fails for good, with a second DeadLetter row.
    assert job_fail_attempt(job_id=job.id, attempt=2, error="boom") == JobStatus.FAILED
    assert DeadLetter.objects.filter(job=job).count() == 2


def test_a_job_that_no_longer_fits_the_capacity_is_dead_lettered(
    job_factory: Any, settings: Any
) -> None:
    job = job_factory(cpu_units=6)
    settings.MAX_CPU_UNITS = 4  # the cluster shrank after the job was accepted
    admission.admit_ready()
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert DeadLetter.objects.get(job=job).reason == DeadLetterReason.EXCEEDS_CAPACITY


def test_an_edge_added_to_a_pending_job_counts_an_unfinished_parent(job_factory: Any) -> None:
    parent = job_factory()
    child = job_factory()
    job_add_dependencies(job=child, parent_ids=[str(parent.id)])
    child.refresh_from_db()
    assert child.pending_parents == 1
    assert JobDependency.objects.filter(job=child, depends_on=parent).exists()
    admission.admit_ready()
    child.refresh_from_db()
    assert child.status == JobStatus.PENDING  # waits for its new parent


@pytest.mark.django_db(transaction=True)
def test_a_child_submitted_while_its_parent_completes_is_never_stranded(
    user: Any, settings: Any
) -> None:
    """Submit children concurrently with the parent's completion, many times: every child
    must end with pending_parents == 0 once the parent completed (the FOR SHARE lock)."""
    settings.MAX_CPU_UNITS = 100  # the children stay queued (no worker) and hold a CPU each
    for _ in range(15):
        parent, _ = job_submit(owner=user, spec=make_spec())
        admit(parent)
        job_start(job_id=parent.id, attempt=1, worker="w")
        children: list[Job] = []
        barrier = threading.Barrier(2)

        def complete(parent: Job, barrier: threading.Barrier) -> None:
            barrier.wait()
            job_complete(job_id=parent.id, attempt=1, result=None)
            connection.close()

        def submit(parent: Job, barrier: threading.Barrier, children: list[Job]) -> None:
            barrier.wait()
            children.append(job_submit(owner=user, spec=make_spec(depends_on=[parent]))[0])
            connection.close()

        threads = [
            threading.Thread(target=complete, args=(parent, barrier)),
            threading.Thread(target=submit, args=(parent, barrier, children)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        (child,) = children
        child.refresh_from_db()
        assert child.pending_parents == 0, "a child was left waiting for a completed parent"


def test_a_failed_attempt_of_a_job_cancelled_while_running_ends_cancelled(job_factory: Any) -> None:
    job = admit(job_factory(max_attempts=3))
    job_start(job_id=job.id, attempt=1, worker="w")
    job_cancel(job=job)  # running: only asks it to stop
    assert job_fail_attempt(job_id=job.id, attempt=1, error="stopped badly") == JobStatus.CANCELLED
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.attempt == 1
    assert not DeadLetter.objects.filter(job=job).exists()


def test_an_attempt_running_far_past_its_timeout_is_settled_as_a_timeout(
    job_factory: Any, settings: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from jobs.engine.sweeps import sweep_overdue_running

    settings.DRACONIC_TIMEOUT_GRACE_SECONDS = 1
    settings.DRACONIC_LEASE_SECONDS = 1
    overdue = admit(job_factory(timeout_seconds=5, max_attempts=1))
    fresh = admit(job_factory(timeout_seconds=5, max_attempts=1))
    for job in (overdue, fresh):
        job_start(job_id=job.id, attempt=1, worker="w")
    # Not a status write: only the start time moves into the past.
    Job.objects.filter(id=overdue.id).update(started_at=timezone.now() - timedelta(seconds=60))
    assert sweep_overdue_running() == 1
    overdue.refresh_from_db()
    fresh.refresh_from_db()
    assert overdue.status == JobStatus.FAILED
    assert DeadLetter.objects.get(job=overdue).reason == DeadLetterReason.TIMEOUT
    assert fresh.status == JobStatus.RUNNING


@pytest.mark.django_db(transaction=True)
def test_a_completing_parent_and_a_failing_parent_of_the_same_children_never_deadlock(
    user: Any, settings: Any
) -> None:
    """Both lock the shared children; they must do it in the same order (by id)."""
    settings.MAX_CPU_UNITS = 1000
    for _ in range(20):
        p1, _ = job_submit(owner=user, spec=make_spec())
        p2, _ = job_submit(owner=user, spec=make_spec(max_attempts=1))
        for parent in (p1, p2):
            admit(parent)
            job_start(job_id=parent.id, attempt=1, worker="w")
        children = [
            job_submit(owner=user, spec=make_spec(depends_on=[p1, p2]))[0] for _ in range(40)
        ]
        errors: list[BaseException] = []
        barrier = threading.Barrier(2)

        def run(fn: Any, barrier: threading.Barrier, errors: list[BaseException]) -> None:
            try:
                barrier.wait()
                fn()
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)
            finally:
                connection.close()

        complete = partial(job_complete, job_id=p1.id, attempt=1, result=None)
        fail = partial(job_fail_attempt, job_id=p2.id, attempt=1, error="x")
        threads = [
            threading.Thread(target=run, args=(fn, barrier, errors)) for fn in (complete, fail)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert Job.objects.get(id=p1.id).status == JobStatus.COMPLETED
        assert set(
            Job.objects.filter(id__in=[c.id for c in children]).values_list("status", flat=True)
        ) == {JobStatus.CANCELLED}
