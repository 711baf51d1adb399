"""The chaos run's load plan and the checks of its verdict, on plain data (the run itself is
in ``tests/chaos``)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from tests.chaos.plan import Planned, expected_outcomes, make_plan
from tests.chaos.verify import duplicate_runs, order_violations


def test_the_plan_holds_chains_diamonds_flaky_and_doomed_jobs_with_their_expected_outcomes():
    plan = make_plan(500, 50, random.Random(3))  # noqa: S311  (a reproducible load, not a secret)
    jobs = [job for batch in plan.batches for job in batch]
    assert len(jobs) == 500
    keys_by_batch = [{job.key for job in batch} for batch in plan.batches]
    for batch, keys in zip(plan.batches, keys_by_batch, strict=True):
        assert all(parent in keys for job in batch for parent in job.parents)  # never cut a shape
    kinds = {job.kind for job in jobs}
    assert kinds == {"ok", "flaky", "doomed"}
    assert sum(job.kind == "flaky" for job in jobs) >= 25
    assert set(plan.expected.values()) == {"completed", "failed", "cancelled"}
    assert len({job.priority for job in jobs}) == 4


def test_descendants_of_a_doomed_job_are_expected_cancelled_and_the_rest_completed():
    def job(key: str, kind: str, *parents: str) -> Planned:
        return Planned(
            key=key, kind=kind, parents=list(parents), priority="normal", ms=0, cpu=1, mem=64
        )

    jobs = [
        job("a", "doomed"),
        job("b", "ok", "a"),
        job("c", "flaky"),
        job("d", "doomed", "b", "c"),
    ]
    assert expected_outcomes(jobs) == {
        "a": "failed",
        "b": "cancelled",
        "c": "completed",
        "d": "cancelled",
    }


def test_the_checks_catch_a_repeated_attempt_and_a_child_that_started_before_its_parent():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    runs = [
        ("a", 1, 10, t0.timestamp()),
        ("b", 1, 11, (t0 + timedelta(seconds=1)).timestamp()),
        ("a", 1, 12, t0.timestamp()),
        ("a", 2, 12, t0.timestamp()),
    ]
    assert duplicate_runs(runs) == ["a:1 ran 2 times"]
    rows = {
        "a": {"status": "completed", "started_at": t0, "completed_at": t0 + timedelta(seconds=2)},
        "b": {
            "status": "completed",
            "started_at": t0 + timedelta(seconds=3),
            "completed_at": t0 + timedelta(seconds=4),
        },
    }
    # b's database start is after a completed, but its handler ran (log) one second before.
    (violation,) = order_violations(rows, runs, [("b", "a")])
    assert violation.startswith("b started")
    assert order_violations(rows, runs[:1], [("b", "a")]) == []
