"""The admission policy (``jobs.engine.admission``, ``statements.READY_ORDER``): priority aged by
the wait, round-robin between owners and concurrency keys within a priority, and the starving
job that keeps capacity for itself."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from jobs.api.submit import job_submit
from jobs.engine import admission
from jobs.models import Job, JobStatus
from tests.factories import make_spec

pytestmark = pytest.mark.django_db(transaction=True)


def submit(user: Any, *, waited: float = 0, **spec: Any) -> Job:
    job, _ = job_submit(owner=user, spec=make_spec(**spec))
    if waited:
        Job.objects.filter(id=job.id).update(created_at=timezone.now() - timedelta(seconds=waited))
    return job


def queued(jobs: list[Job]) -> list[bool]:
    fresh = {j.id: j.status for j in Job.objects.filter(id__in=[j.id for j in jobs])}
    return [fresh[j.id] == JobStatus.QUEUED for j in jobs]


def test_a_job_counts_one_priority_up_for_each_aging_period(settings: Any, user: Any) -> None:
    settings.MAX_CPU_UNITS = 1
    settings.DRACONIC_AGING_SECONDS = 10
    fresh_high = submit(user, priority="high")
    old_low = submit(user, priority="low", waited=25)  # two periods: counts as high, and older
    admission.dispatch()
    assert queued([old_low, fresh_high]) == [True, False]


def test_a_job_aged_past_critical_keeps_the_capacity_it_needs(settings: Any, user: Any) -> None:
    settings.MAX_CPU_UNITS = 4
    settings.DRACONIC_AGING_SECONDS = 10
    holder = submit(user, cpu_units=1)
    admission.dispatch()
    big = submit(user, cpu_units=4, priority="low", waited=45)  # aged four periods: starving
    urgent = submit(user, priority="critical")
    admission.dispatch()
    assert queued([holder, big, urgent]) == [True, False, False]


def test_a_big_job_not_yet_starving_lets_the_others_pass(settings: Any, user: Any) -> None:
    settings.MAX_CPU_UNITS = 4
    settings.DRACONIC_AGING_SECONDS = 10
    holder = submit(user, cpu_units=1)
    admission.dispatch()
    big = submit(user, cpu_units=4, priority="low", waited=25)  # counts as high, not starving
    urgent = submit(user, priority="critical")
    admission.dispatch()
    assert queued([holder, big, urgent]) == [True, False, True]


def test_owners_take_turns_within_a_priority(settings: Any, user: Any, other_user: Any) -> None:
    settings.MAX_CPU_UNITS = 6
    settings.DRACONIC_AGING_SECONDS = 3600
    backlog = [submit(user) for _ in range(30)]
    late = [submit(other_user) for _ in range(3)]
    admission.dispatch()
    assert queued(backlog) == [True] * 3 + [False] * 27
    assert queued(late) == [True] * 3


def test_concurrency_keys_take_turns_within_an_owner(settings: Any, user: Any) -> None:
    settings.MAX_CPU_UNITS = 4
    settings.DRACONIC_AGING_SECONDS = 3600
    backlog = [submit(user, concurrency_key="tenant:a") for _ in range(20)]
    late = [submit(user, concurrency_key="tenant:b") for _ in range(2)]
    admission.dispatch()
    assert queued(backlog) == [True] * 2 + [False] * 18
    assert queued(late) == [True, True]


def test_turns_hold_across_pages(settings: Any, user: Any, other_user: Any) -> None:
    """Pages after the first count turns again over the jobs still waiting."""
    settings.MAX_CPU_UNITS = 40
    settings.DRACONIC_DISPATCH_BATCH = 4
    settings.DRACONIC_AGING_SECONDS = 3600
    backlog = [submit(user, memory_mb=10) for _ in range(30)]
    late = [submit(other_user, memory_mb=10) for _ in range(5)]
    settings.MAX_MEMORY_MB = 100  # room for ten
    admission.dispatch()
    assert queued(late) == [True] * 5
    assert sum(queued(backlog)) == 5


def test_a_delayed_job_handed_back_ages_from_its_run_at_not_from_its_submit(
    settings: Any, user: Any
) -> None:
    """A handed-back (or re-driven) job has no next_attempt_at any more: its wait must still
    count from its run_at, or a job delayed by an hour comes back starving (a barrier)."""
    from jobs.engine.attempts import job_start
    from jobs.engine.interrupted import job_hand_back

    settings.DRACONIC_AGING_SECONDS = 60
    delayed = submit(user, priority="low", run_at=timezone.now() - timedelta(seconds=1))
    Job.objects.filter(id=delayed.id).update(created_at=timezone.now() - timedelta(hours=1))
    admission.dispatch()
    delayed.refresh_from_db()
    assert job_start(job_id=delayed.id, attempt=delayed.attempt, worker="w1@host") is not None
    assert (
        job_hand_back(job_id=delayed.id, attempt=delayed.attempt, worker="w1@host", why="stopping")
        == "pending"
    )
    (place,) = admission.ready_order()
    assert place.effective_priority == Job.objects.get(id=delayed.id).priority


def test_a_run_at_in_the_past_gives_no_head_start(settings: Any, user: Any) -> None:
    """A run_at before the submit is "now": the job must not count as having waited since
    then (a client could otherwise jump every queue with run_at=2000-01-01)."""
    settings.DRACONIC_AGING_SECONDS = 60
    submit(user, priority="low", run_at=timezone.now() - timedelta(days=365))
    (place,) = admission.ready_order()
    assert place.effective_priority == 3  # low, not aged


def test_a_backlog_a_limit_holds_does_not_fill_the_scan_window(
    settings: Any, user: Any, other_user: Any, monkeypatch: Any
) -> None:
    """One tenant's aged backlog, held back by its concurrency limit, sorts first (starving).
    A pass reads only MAX_SCAN ready jobs: if they are all that backlog's, every other
    tenant's job waits, with the capacity idle, until the backlog drains (here 2,000 jobs at
    max_concurrency at a time). So a pass reads no more of one line than could start."""
    from jobs.models import Limit

    settings.MAX_CPU_UNITS = 4
    settings.DRACONIC_AGING_SECONDS = 10
    monkeypatch.setattr(admission, "MAX_SCAN", 6)
    monkeypatch.setattr(admission, "LINE_SLACK", 1)
    Limit.objects.create(key="tenant:*", max_concurrency=1)
    backlog = [submit(user, concurrency_key="tenant:a", waited=300) for _ in range(10)]
    other = submit(other_user, concurrency_key="tenant:b")
    admission.dispatch()
    assert sum(queued(backlog)) == 1
    assert queued([other]) == [True]


def test_a_re_driven_job_waits_from_its_re_drive_not_from_its_submit(
    settings: Any, user: Any
) -> None:
    """A bulk re-drive of old failed jobs must not put them all ahead of every fresh job as
    starving (and make the first that does not fit a barrier): their wait starts again."""
    from jobs.engine.deadletter import dead_letter_requeue
    from tests.factories import move_to

    settings.DRACONIC_AGING_SECONDS = 60
    old = submit(user, priority="low", waited=3600)
    move_to(old, JobStatus.FAILED)
    assert dead_letter_requeue(job_id=old.id)
    (place,) = admission.ready_order()
    assert place.effective_priority == 3  # low, not starving


def test_a_higher_priority_rank_goes_first_within_its_level_and_keeps_the_turns(
    settings: Any, user: Any, other_user: Any
) -> None:
    """django.tasks' exact priority (-100..100) orders jobs inside their level: within a line
    and within a turn, larger first; the round-robin between owners still holds."""
    settings.MAX_CPU_UNITS = 3
    settings.DRACONIC_AGING_SECONDS = 3600
    low = [submit(user, priority_rank=-100) for _ in range(3)]
    high = submit(user, priority_rank=100)
    middle = submit(user, priority_rank=1)
    other = submit(other_user, priority_rank=-1)
    admission.dispatch()
    assert queued([high, middle, other]) == [True, True, True]
    assert queued(low) == [False] * 3
