"""``jobs.engine.interrupted``: attempts their worker did not finish. A handed-back attempt
(a warm shutdown) goes back to pending uncharged and its late outcome is refused; a lost one
(a crash) is charged as before; a worker restarted under its name settles what its previous
process left running; every path leaves the attempt's lease free, once."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.engine import admission, ledger
from jobs.engine.attempts import job_complete, job_fail_attempt, job_start
from jobs.engine.cancel import job_cancel
from jobs.engine.interrupted import (
    job_hand_back,
    job_settle_lost,
    release_if_settled,
    worker_restarted,
)
from jobs.models import DeadLetter, DeadLetterReason, Job, JobStatus

pytestmark = pytest.mark.django_db(transaction=True)


def started(job: Job, *, worker: str = "w1@host") -> Job:
    """Admit ``job`` (its lease booked) and start its next attempt on ``worker``."""
    admission.admit_ready()
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    running = job_start(job_id=job.id, attempt=job.attempt, worker=worker)
    assert running is not None
    return running


def lease_held(job: Job, attempt: int) -> bool:
    return ledger.lease_id(job.id, attempt) in ledger.ledger_leases()


def test_a_handed_back_attempt_is_pending_again_uncharged_and_its_late_outcome_refused(
    job_factory: Any,
) -> None:
    job = started(job_factory(max_attempts=1))
    assert lease_held(job, 1)
    assert (
        job_hand_back(job_id=job.id, attempt=1, worker="w1@host", why="worker w1 is shutting down")
        == "pending"
    )
    job.refresh_from_db()
    assert (job.status, job.attempt, job.attempt_offset) == (JobStatus.PENDING, 1, 1)
    assert not lease_held(job, 1)
    log = job.logs.get(to_status=JobStatus.PENDING, from_status=JobStatus.RUNNING)
    assert log.message.startswith("attempt 1 handed back: worker w1 is shutting down")
    # The interrupted attempt's handler finishes after all: nothing it reports counts.
    assert job_complete(job_id=job.id, attempt=1, result={"late": True}) is False
    assert job_fail_attempt(job_id=job.id, attempt=1, error="late") is None
    assert job_hand_back(job_id=job.id, attempt=1, worker="w1@host", why="again") is None
    job.refresh_from_db()
    assert (job.status, job.result) == (JobStatus.PENDING, None)
    assert not DeadLetter.objects.exists()


def test_only_charged_attempts_count_against_max_attempts(job_factory: Any) -> None:
    job = job_factory(max_attempts=1)
    for attempt in (1, 2):  # two shutdowns in a row
        job = started(job)
        assert job.attempt == attempt
        assert (
            job_hand_back(job_id=job.id, attempt=attempt, worker="w1@host", why="shutdown")
            == "pending"
        )
    job = started(job)
    # Attempt 3 is the first one charged: max_attempts=1 fails it for good, once.
    assert job_fail_attempt(job_id=job.id, attempt=3, error="boom") == JobStatus.FAILED
    assert DeadLetter.objects.get(job=job).reason == DeadLetterReason.MAX_ATTEMPTS
    assert ledger.ledger_usage().leases == 0


def test_a_job_whose_cancel_was_requested_ends_cancelled_when_handed_back(
    job_factory: Any,
) -> None:
    job = started(job_factory())
    job_cancel(job=job)
    assert (
        job_hand_back(job_id=job.id, attempt=1, worker="w1@host", why="shutdown")
        == JobStatus.CANCELLED
    )
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert not lease_held(job, 1)


def test_only_the_worker_running_an_attempt_can_hand_it_back_or_end_its_cancel(
    job_factory: Any,
) -> None:
    job = started(job_factory())
    assert job_hand_back(job_id=job.id, attempt=1, worker="w2@host", why="shutdown") is None
    job_cancel(job=job)
    assert job_hand_back(job_id=job.id, attempt=1, worker="w2@host", why="shutdown") is None
    job.refresh_from_db()
    assert (job.status, job.attempt_offset, job.worker) == (JobStatus.RUNNING, 0, "w1@host")
    assert lease_held(job, 1)


def test_a_lost_attempt_is_charged_and_a_settled_one_only_frees_its_lease(
    job_factory: Any,
) -> None:
    job = started(job_factory(max_attempts=1))
    assert job_settle_lost(job_id=job.id, attempt=1, why="its pool process exited") is True
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert DeadLetter.objects.get(job=job).reason == DeadLetterReason.WORKER_LOST
    assert "lost its worker w1@host: its pool process exited" in job.error
    assert job_settle_lost(job_id=job.id, attempt=1, why="again") is False
    assert ledger.ledger_usage().leases == 0


def test_releasing_leaves_a_held_lease_alone_and_frees_a_stray_one_once(
    job_factory: Any,
) -> None:
    job = started(job_factory())
    assert release_if_settled(job_id=job.id, attempt=1) is False  # still running: kept
    assert lease_held(job, 1)
    assert job_complete(job_id=job.id, attempt=1, result=None)
    stray = ledger.lease_id(job.id, 1)
    ledger.ledger_rebuild([(stray, 1, 128, 30.0)])  # as if the release had been lost
    assert release_if_settled(job_id=job.id, attempt=1) is True
    assert release_if_settled(job_id=job.id, attempt=1) is False
    assert ledger.ledger_usage().cpu_units == 0


def test_a_restarted_worker_settles_only_what_its_own_name_left_running(
    job_factory: Any,
) -> None:
    mine = started(job_factory(max_attempts=2), worker="w1@host")
    other = started(job_factory(), worker="w2@host")
    assert worker_restarted(worker="w1@host") == 1
    mine.refresh_from_db()
    assert mine.status == JobStatus.RETRYING
    lost = mine.logs.get(to_status=JobStatus.RETRYING)
    assert lost.context["reason"] == DeadLetterReason.WORKER_LOST
    assert "the worker was restarted" in lost.message
    assert not lease_held(mine, 1)
    assert Job.objects.get(id=other.id).status == JobStatus.RUNNING
    assert lease_held(other, 1)
    assert worker_restarted(worker="w1@host") == 0
