"""``jobs.transitions``: the only writer of ``Job.status``. Illegal moves raise, a CAS from
the wrong state changes nothing, every change writes exactly one log row, and of two
concurrent compare-and-swaps from two connections exactly one wins."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from jobs.models import ExecutionLog, Job, JobStatus, LogLevel
from jobs.transitions import ALLOWED, SQL, InvalidTransition, transition, transition_many

S = JobStatus
ILLEGAL = [(a, b) for a in S for b in S if b not in ALLOWED[a]]
LEGAL = [(a, b) for a in S for b in sorted(ALLOWED[a])]


PATHS: dict[JobStatus, list[JobStatus]] = {
    S.PENDING: [],
    S.QUEUED: [S.QUEUED],
    S.RUNNING: [S.QUEUED, S.RUNNING],
    S.RETRYING: [S.QUEUED, S.RUNNING, S.RETRYING],
    S.COMPLETED: [S.QUEUED, S.RUNNING, S.COMPLETED],
    S.FAILED: [S.FAILED],
    S.CANCELLED: [S.CANCELLED],
}


def force_status(job: Job, status: JobStatus) -> None:
    """Set-up: drive a fresh (pending) job to ``status`` through real transitions."""
    current = S.PENDING
    for step in PATHS[status]:
        assert transition(job.id, from_=current, to=step) is not None
        current = step


@pytest.mark.django_db
@pytest.mark.parametrize(("from_", "to"), ILLEGAL, ids=[f"{a}->{b}" for a, b in ILLEGAL])
def test_an_illegal_transition_raises_and_changes_nothing(
    job_factory: Any, from_: JobStatus, to: JobStatus
) -> None:
    job = job_factory()
    force_status(job, from_)
    logs = ExecutionLog.objects.count()
    with pytest.raises(InvalidTransition) as raised:
        transition(job.id, from_=from_, to=to)
    assert (raised.value.from_, raised.value.to) == (from_, to)
    job.refresh_from_db()
    assert job.status == from_
    assert ExecutionLog.objects.count() == logs


@pytest.mark.django_db
def test_terminal_states_have_no_way_out_but_the_dlq() -> None:
    assert ALLOWED[S.COMPLETED] == ALLOWED[S.CANCELLED] == frozenset()
    assert ALLOWED[S.FAILED] == frozenset({S.PENDING})


@pytest.mark.django_db
@pytest.mark.parametrize(("from_", "to"), LEGAL, ids=[f"{a}->{b}" for a, b in LEGAL])
def test_a_legal_transition_writes_exactly_one_log_row(
    job_factory: Any, from_: JobStatus, to: JobStatus
) -> None:
    job = job_factory()
    force_status(job, from_)
    before = set(ExecutionLog.objects.values_list("id", flat=True))
    change = transition(job.id, from_=from_, to=to, message="because", context={"why": "test"})
    assert change is not None
    assert (change.job_id, change.previous_status, change.status) == (job.id, from_, to)
    job.refresh_from_db()
    assert job.status == to
    new = ExecutionLog.objects.exclude(id__in=before)
    assert new.count() == 1
    log = new.get()
    assert (log.job_id, log.from_status, log.to_status, log.message) == (
        job.id,
        from_,
        to,
        "because",
    )
    assert log.context == {"why": "test"}
    assert change.log_id == log.id


@pytest.mark.django_db
@pytest.mark.parametrize("actual", [S.QUEUED, S.RUNNING, S.COMPLETED, S.CANCELLED])
def test_a_cas_from_the_wrong_state_returns_none_and_changes_nothing(
    job_factory: Any, actual: JobStatus
) -> None:
    job = job_factory()
    force_status(job, actual)
    job.refresh_from_db()
    logs = ExecutionLog.objects.count()
    assert transition(job.id, from_=S.PENDING, to=S.CANCELLED, fields={"error": "nope"}) is None
    after = Job.objects.get(id=job.id)
    assert (after.status, after.error, after.updated_at) == (actual, "", job.updated_at)
    assert ExecutionLog.objects.count() == logs


@pytest.mark.django_db
def test_a_stale_attempt_is_fenced_off(job_factory: Any) -> None:
    job = job_factory()
    assert transition(job.id, from_=S.PENDING, to=S.QUEUED, fields={"attempt": 2})
    assert transition(job.id, from_=S.QUEUED, to=S.RUNNING, attempt=1) is None
    assert Job.objects.get(id=job.id).status == S.QUEUED
    change = transition(job.id, from_=S.QUEUED, to=S.RUNNING, attempt=2)
    assert change is not None and change.attempt == 2
    assert ExecutionLog.objects.get(job=job, to_status=S.RUNNING).attempt == 2


@pytest.mark.django_db
def test_a_transition_sets_the_extra_fields_and_sql_expressions(job_factory: Any) -> None:
    job = job_factory()
    change = transition(
        job.id,
        from_=S.PENDING,
        to=S.QUEUED,
        fields={"attempt": SQL("attempt + 1"), "worker": "w1", "result": {"partial": [1, 2]}},
        level=LogLevel.WARNING,
    )
    assert change is not None
    job.refresh_from_db()
    assert (job.status, job.attempt, job.worker, job.result) == (
        S.QUEUED,
        1,
        "w1",
        {"partial": [1, 2]},
    )
    assert ExecutionLog.objects.get(job=job, to_status=S.QUEUED).level == LogLevel.WARNING


@pytest.mark.django_db
def test_transition_many_moves_only_the_jobs_in_a_source_state(job_factory: Any) -> None:
    pending = [job_factory() for _ in range(3)]
    running = job_factory()
    force_status(running, S.RUNNING)
    before = ExecutionLog.objects.count()
    changes = transition_many(
        [j.id for j in [*pending, running]], from_=[S.PENDING, S.RETRYING], to=S.CANCELLED
    )
    assert {c.job_id for c in changes} == {j.id for j in pending}
    assert ExecutionLog.objects.count() == before + 3
    assert Job.objects.get(id=running.id).status == S.RUNNING
    assert set(
        Job.objects.filter(id__in=[j.id for j in pending]).values_list("status", flat=True)
    ) == {S.CANCELLED}


@pytest.mark.django_db
def test_a_transition_of_an_unknown_job_returns_none() -> None:
    assert transition("00000000-0000-4000-8000-000000000000", from_=S.PENDING, to=S.QUEUED) is None
    assert transition_many([], from_=S.PENDING, to=S.QUEUED) == []


# --- two connections ------------------------------------------------------------------------


def race(job_id: Any, targets: list[JobStatus]) -> list[Any]:
    """Run ``transition(job, pending -> target)`` for each target at once, one thread (and so
    one database connection) each. Returns what each call returned, in order."""
    barrier = threading.Barrier(len(targets))
    results: list[Any] = [None] * len(targets)
    errors: list[BaseException] = []

    def run(index: int, to: JobStatus) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = transition(job_id, from_=S.PENDING, to=to)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    return results


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("targets", [[S.QUEUED, S.QUEUED], [S.QUEUED, S.CANCELLED]])
def test_of_two_concurrent_compare_and_swaps_exactly_one_wins(
    job_factory: Any, targets: list[JobStatus]
) -> None:
    for _ in range(10):
        job = job_factory()
        results = race(job.id, targets)
        winners = [r for r in results if r is not None]
        assert len(winners) == 1, results
        final = Job.objects.get(id=job.id)
        assert final.status == winners[0].status
        moves = ExecutionLog.objects.filter(job=job, from_status=S.PENDING)
        assert list(moves.values_list("to_status", flat=True)) == [winners[0].status]
