"""``jobs.engine.transitions``: the only writer of ``Job.status``. Every named move is a legal
move of ``ALLOWED`` and every legal move has its function; a move from each of its sources
changes the job and writes exactly one log row; from any other status it changes nothing;
attempts fence stale callers; and of two concurrent moves from two connections exactly one
wins."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from jobs.engine import transitions
from jobs.engine.transitions import ALLOWED, MOVES, InvalidTransition, Move, check_moves
from jobs.models import ExecutionLog, Job, JobDependency, JobStatus
from tests.factories import move_to

S = JobStatus
LEGAL = sorted((a, b) for a in S for b in ALLOWED[a])


def run_move(name: str, job: Job) -> Any:
    """Call move ``name`` on ``job`` the way the engine does, at the job's current attempt."""
    calls: dict[str, Callable[[], Any]] = {
        "admit_jobs": lambda: transitions.admit_jobs(job_ids=[job.id]),
        "start_attempt": lambda: transitions.start_attempt(
            job_id=job.id, attempt=job.attempt, worker="w1"
        ),
        "complete_attempt": lambda: transitions.complete_attempt(
            job_id=job.id, attempt=job.attempt, result={"ok": True}
        ),
        "retry_attempt": lambda: transitions.retry_attempt(
            job_id=job.id,
            attempt=job.attempt,
            error="boom",
            next_attempt_at=timezone.now() + timedelta(seconds=5),
            message="retry",
            context={"retry_in": 5},
        ),
        "fail_attempt": lambda: transitions.fail_attempt(
            job_id=job.id, attempt=job.attempt, error="boom", message="failed", context={}
        ),
        "hand_back_attempt": lambda: transitions.hand_back_attempt(
            job_id=job.id, attempt=job.attempt, worker="test", message="handed back", context={}
        ),
        "fail_waiting": lambda: transitions.fail_waiting(
            job_id=job.id, error="too big", message="failed", context={}
        ),
        "cancel_attempt": lambda: transitions.cancel_attempt(
            job_id=job.id, attempt=job.attempt, message="stopped"
        ),
        "cancel_waiting": lambda: transitions.cancel_waiting(
            job_id=job.id, attempt=job.attempt, message="cancelled"
        ),
        "cancel_descendants": lambda: transitions.cancel_descendants(
            job_ids=[job.id], reason="parent failed"
        ),
        "redrive_jobs": lambda: transitions.redrive_jobs(job_ids=[job.id]),
        "revive_descendants": lambda: transitions.revive_descendants(
            job_ids=[job.id], reason="revived"
        ),
    }
    return calls[name]()


def test_the_moves_are_exactly_the_legal_moves_of_the_table() -> None:
    made = {(source, move.target) for move in MOVES.values() for source in move.sources}
    assert sorted(made) == LEGAL


def test_a_move_the_table_does_not_allow_is_refused() -> None:
    with pytest.raises(InvalidTransition) as raised:
        check_moves([Move("finish_early", (S.PENDING,), S.COMPLETED, "SELECT 1")])
    assert (raised.value.from_, raised.value.to) == (S.PENDING, S.COMPLETED)


def test_terminal_states_have_no_way_out_but_a_redrive() -> None:
    assert ALLOWED[S.COMPLETED] == frozenset()
    assert ALLOWED[S.FAILED] == frozenset({S.PENDING})  # re-driven from the DLQ
    assert ALLOWED[S.CANCELLED] == frozenset({S.PENDING})  # revived with a re-driven ancestor
    assert MOVES["revive_descendants"].sources == (S.CANCELLED,)


FROM_SOURCE = [(name, s) for name, move in MOVES.items() for s in move.sources]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "source"), FROM_SOURCE, ids=[f"{n}:{s}" for n, s in FROM_SOURCE])
def test_a_move_from_each_of_its_sources_changes_the_job_and_logs_once(
    job_factory: Any, name: str, source: JobStatus
) -> None:
    job = job_factory()
    if name == "revive_descendants":  # only what an ancestor's failure cancelled comes back
        transitions.cancel_descendants(job_ids=[job.id], reason="parent failed")
        job.refresh_from_db()
    else:
        job = move_to(job, source)
    logs = ExecutionLog.objects.count()
    assert run_move(name, job)
    after = Job.objects.get(id=job.id)
    assert after.status == MOVES[name].target
    assert ExecutionLog.objects.count() == logs + 1
    log = ExecutionLog.objects.filter(job=job).latest("id")
    assert (log.from_status, log.to_status) == (source, MOVES[name].target)


OTHER_SOURCES = [(name, s) for name, move in MOVES.items() for s in S if s not in move.sources]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "status"), OTHER_SOURCES, ids=[f"{n}:{s}" for n, s in OTHER_SOURCES]
)
def test_a_move_from_any_other_status_changes_nothing(
    job_factory: Any, name: str, status: JobStatus
) -> None:
    job = move_to(job_factory(), status)
    logs = ExecutionLog.objects.count()
    assert not run_move(name, job)
    after = Job.objects.get(id=job.id)
    assert (after.status, after.updated_at) == (status, job.updated_at)
    assert ExecutionLog.objects.count() == logs


@pytest.mark.django_db
def test_a_stale_attempt_is_fenced_out(job_factory: Any) -> None:
    job = move_to(job_factory(), S.QUEUED)
    assert job.attempt == 1
    assert transitions.start_attempt(job_id=job.id, attempt=2, worker="w1") is None
    assert Job.objects.get(id=job.id).status == S.QUEUED
    started = transitions.start_attempt(job_id=job.id, attempt=1, worker="w1")
    assert started is not None and started.attempt == 1 and started.worker == "w1"
    assert ExecutionLog.objects.get(job=job, to_status=S.RUNNING).context == {"worker": "w1"}
    assert transitions.complete_attempt(job_id=job.id, attempt=0, result=None) is None


@pytest.mark.django_db
def test_start_returns_the_whole_row_with_its_json_decoded(job_factory: Any) -> None:
    job = move_to(job_factory(payload={"nested": {"a": [1, "two", None]}}), S.QUEUED)
    started = transitions.start_attempt(job_id=job.id, attempt=1, worker="w1")
    assert started is not None
    assert started.payload == {"nested": {"a": [1, "two", None]}}
    assert (started.status, started.owner_id, started.started_at is not None) == (
        S.RUNNING,
        job.owner_id,
        True,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("result", ["done", 5, [1, 2], {"partial": [1, 2]}, None])
def test_a_completion_stores_any_json_result(job_factory: Any, result: Any) -> None:
    job = move_to(job_factory(), S.COMPLETED, result=result)
    assert (job.status, job.result, job.error) == (S.COMPLETED, result, "")


@pytest.mark.django_db
def test_a_completion_counts_the_children_it_left_ready(job_factory: Any) -> None:
    parent, other = job_factory(), job_factory()
    only = job_factory(depends_on=[parent])
    both = job_factory(depends_on=[parent, other])
    job = move_to(parent, S.RUNNING)
    done = transitions.complete_attempt(job_id=job.id, attempt=job.attempt, result=None)
    assert done is not None and done.ready_children == 1
    counters = dict(
        Job.objects.filter(id__in=[only.id, both.id]).values_list("id", "pending_parents")
    )
    assert counters == {only.id: 0, both.id: 1}
    assert JobDependency.objects.filter(depends_on=parent).count() == 2


@pytest.mark.django_db
def test_a_many_job_move_changes_only_the_jobs_in_its_source_states(job_factory: Any) -> None:
    pending = [job_factory() for _ in range(3)]
    running = move_to(job_factory(), S.RUNNING)
    before = ExecutionLog.objects.count()
    changes = transitions.cancel_descendants(
        job_ids=[j.id for j in [*pending, running]], reason="parent failed"
    )
    assert {c.job_id for c in changes} == {j.id for j in pending}
    assert {(c.previous_status, c.status) for c in changes} == {(S.PENDING, S.CANCELLED)}
    assert ExecutionLog.objects.count() == before + 3
    assert Job.objects.get(id=running.id).status == S.RUNNING
    errors = set(Job.objects.filter(id__in=[j.id for j in pending]).values_list("error", flat=True))
    assert errors == {"parent failed"}


@pytest.mark.django_db
def test_a_move_of_an_unknown_job_returns_nothing() -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    assert transitions.cancel_waiting(job_id=unknown, attempt=0, message="x") is None
    assert transitions.admit_jobs(job_ids=[]) == []
    assert transitions.cancel_descendants(job_ids=[], reason="x") == []


# --- two connections ------------------------------------------------------------------------


def race(job: Job, names: list[str]) -> list[Any]:
    """Run each move on ``job`` at once, one thread (and so one database connection) each.
    Returns what each call returned, in order."""
    barrier = threading.Barrier(len(names))
    results: list[Any] = [None] * len(names)
    errors: list[BaseException] = []

    def run(index: int, name: str) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = run_move(name, job)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, n)) for i, n in enumerate(names)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    return results


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "names", [["admit_jobs", "admit_jobs"], ["admit_jobs", "cancel_waiting"]], ids=str
)
def test_of_two_concurrent_moves_exactly_one_wins(job_factory: Any, names: list[str]) -> None:
    for _ in range(10):
        job = job_factory()
        results = race(job, names)
        winners = [r for r in results if r]
        assert len(winners) == 1, results
        change = winners[0][0] if isinstance(winners[0], list) else winners[0]
        final = Job.objects.get(id=job.id)
        assert final.status == change.status
        moves = ExecutionLog.objects.filter(job=job, from_status=S.PENDING)
        assert list(moves.values_list("to_status", flat=True)) == [change.status]
