"""The charts' rollup against real rows: known jobs give known counts and percentiles, the
sweep aggregates each closed bucket once (again and from two sweeps at once, the same rows),
and the table stays bounded (old buckets pruned)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from jobs.models import Job, JobStatus
from jobs.rollups.models import ALL_TYPES, KEEP, Grain, JobRollup
from jobs.rollups.sweep import floor_to, rollup_grain, rollup_sweep
from tests.factories import move_to

S = JobStatus


def _finished(
    job_factory: Any,
    type_: str,
    status: JobStatus,
    end: datetime,
    wait: float,
    run: float,
    run_at: bool = False,
) -> Job:
    """A job that really went through the engine to ``status``, its times then set so that it
    waited ``wait`` seconds (from its run_at when ``run_at``) and ran ``run`` seconds."""
    job = move_to(job_factory(type=type_), status)
    started = end - timedelta(seconds=run)
    due = started - timedelta(seconds=wait)
    Job.objects.filter(id=job.id).update(
        created_at=due - timedelta(seconds=600) if run_at else due,
        run_at=due if run_at else None,
        started_at=started,
        completed_at=end,
    )
    return job


def _sweep_all(now: datetime) -> int:
    total = 0
    while True:
        done = rollup_sweep(now).buckets
        if not done:
            return total
        total += done


@pytest.fixture
def known_jobs(job_factory: Any) -> datetime:
    """Minute t0: noop completed with waits 1..4 s and runs 10..40 s, one noop failed (wait 5,
    run 50; it waited from its run_at); minute t0+1: one fail-type job completed. Returns t0."""
    t0 = floor_to(timezone.now() - timedelta(hours=3), Grain.HOUR) + timedelta(minutes=10)
    for i in range(1, 5):
        _finished(job_factory, "noop", S.COMPLETED, t0 + timedelta(seconds=5 * i), i, 10 * i)
    _finished(job_factory, "noop", S.FAILED, t0 + timedelta(seconds=59), 5, 50, run_at=True)
    _finished(job_factory, "fail", S.COMPLETED, t0 + timedelta(seconds=61), 7, 2)
    move_to(job_factory(type="noop"), S.CANCELLED)  # neither completed nor failed
    return t0


def _row(grain: Grain, bucket: datetime, type_: str) -> tuple[Any, ...]:
    r = JobRollup.objects.get(grain=grain, bucket=bucket, type=type_)
    return (r.completed, r.failed, r.wait_p50, r.wait_p95, r.run_p50, r.run_p95)


NOOP = (4, 1, 3.0, pytest.approx(4.8), 30.0, pytest.approx(48.0))


def test_known_jobs_give_known_counts_and_percentiles_per_minute_and_hour(known_jobs):
    t0 = known_jobs
    assert _sweep_all(timezone.now()) > 0
    m, h = Grain.MINUTE, Grain.HOUR
    assert _row(m, t0, "noop") == NOOP
    assert _row(m, t0, ALL_TYPES) == NOOP
    assert not JobRollup.objects.filter(grain=m, bucket=t0, type="fail").exists()
    assert _row(m, t0 + timedelta(minutes=1), "fail") == (1, 0, 7.0, 7.0, 2.0, 2.0)
    assert _row(m, t0 + timedelta(minutes=1), ALL_TYPES) == (1, 0, 7.0, 7.0, 2.0, 2.0)
    # A minute in which nothing finished has its all-types row of zeros (it is done).
    assert _row(m, t0 + timedelta(minutes=5), ALL_TYPES) == (0, 0, None, None, None, None)
    hour = floor_to(t0, h)
    assert _row(h, hour, "noop") == NOOP
    assert _row(h, hour, ALL_TYPES)[:2] == (5, 1)
    # waits 1, 2, 3, 4, 5, 7: p50 3.5; runs 10, 20, 30, 40, 50, 2: p50 25
    assert _row(h, hour, ALL_TYPES)[2] == pytest.approx(3.5)
    assert _row(h, hour, ALL_TYPES)[4] == pytest.approx(25.0)


def test_every_closed_bucket_of_the_keep_is_done_once_and_again_changes_nothing(known_jobs):
    now = timezone.now()
    _sweep_all(now)
    minutes = JobRollup.objects.filter(grain=Grain.MINUTE, type=ALL_TYPES)
    # Every closed minute of the last day, each once (the unique constraint says once).
    first, last = floor_to(now - KEEP[Grain.MINUTE], Grain.MINUTE), floor_to(now, Grain.MINUTE)
    expected = int((last - first) / timedelta(minutes=1))
    assert expected - 1 <= minutes.count() <= expected  # the last one closes after the grace
    before = sorted(JobRollup.objects.values_list("grain", "bucket", "type", "completed"))
    assert _sweep_all(now) == 0
    assert sorted(JobRollup.objects.values_list("grain", "bucket", "type", "completed")) == before


@pytest.mark.django_db(transaction=True)
def test_two_schedulers_sweeping_at_once_write_the_same_rows_once(job_factory, user):
    t0 = floor_to(timezone.now() - timedelta(hours=2), Grain.MINUTE)
    for i in range(1, 5):
        _finished(job_factory, "noop", S.COMPLETED, t0 + timedelta(seconds=i), i, 10 * i)
    _finished(job_factory, "noop", S.FAILED, t0 + timedelta(seconds=30), 5, 50)
    now, barrier, errors = timezone.now(), threading.Barrier(2), []

    def sweep() -> None:
        try:
            barrier.wait()
            while rollup_grain(Grain.MINUTE, now)[0]:
                pass
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _row(Grain.MINUTE, t0, "noop") == NOOP
    assert JobRollup.objects.filter(grain=Grain.MINUTE, bucket=t0).count() == 2  # noop + all


def test_the_table_is_bounded_old_buckets_are_pruned(known_jobs):
    t0 = known_jobs
    now = timezone.now()
    _sweep_all(now)
    assert JobRollup.objects.filter(grain=Grain.MINUTE, bucket=t0).exists()
    later = now + timedelta(days=2)
    _sweep_all(later)
    m_cut = floor_to(later - KEEP[Grain.MINUTE], Grain.MINUTE)
    assert not JobRollup.objects.filter(grain=Grain.MINUTE, bucket__lt=m_cut).exists()
    assert JobRollup.objects.filter(grain=Grain.HOUR, bucket=floor_to(t0, Grain.HOUR)).exists()
    much_later = now + timedelta(days=9)
    _sweep_all(much_later)
    h_cut = floor_to(much_later - KEEP[Grain.HOUR], Grain.HOUR)
    assert not JobRollup.objects.filter(bucket__lt=h_cut).exists()
    # At most a day of minutes and eight days of hours, per type and for all types.
    types = 1 + len({"noop", "fail"})
    assert JobRollup.objects.count() <= types * (24 * 60 + 8 * 24 + 2)


def test_the_scheduler_tick_runs_the_sweep(known_jobs):
    from jobs.engine.sweeps import scheduler_tick
    from jobs.rollups import sweep

    sweep._next_close.clear()
    ticks = 0
    while scheduler_tick().rolled_up:  # a day of minutes, 60 a tick
        ticks += 1
    assert ticks >= 24
    assert JobRollup.objects.filter(grain=Grain.MINUTE, bucket=known_jobs, type="noop").exists()
