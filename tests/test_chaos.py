"""The fault-injection run (``bench.chaos --quick``) as a test: it starts its own PostgreSQL
cluster, Redis server, two workers and two schedulers, kills and restarts them under a load of
dependent jobs, and must end with nothing lost and nothing run twice."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.chaos import (
    Planned,
    duplicate_runs,
    expected_outcomes,
    make_plan,
    order_violations,
)
from jobs.api.submit import job_submit
from jobs.engine import admission, ledger
from jobs.engine.sweeps import scheduler_tick
from jobs.engine.transitions import start_attempt
from jobs.models import Job, JobStatus
from tests.conftest import wait_until
from tests.factories import make_spec

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent


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


def test_a_worker_lost_between_its_start_and_its_first_lease_renewal_is_settled(
    transactional_db, user, settings
):
    """Found by the chaos run: a worker SIGKILLed right after its ``queued -> running`` commit,
    before its first lease renewal, left the job running forever, because the lease kept the
    never-expiring expiry of a queued job and no sweep looked at it."""
    settings.DRACONIC_LEASE_SECONDS = 1
    job, _ = job_submit(owner=user, spec=make_spec(type="noop", max_attempts=3))
    assert admission.admit_ready() == 1
    # The worker's job_start commits, then the worker dies before ledger_renew.
    assert start_attempt(job_id=job.id, attempt=1, worker="w9@gone") is not None

    def settled() -> bool:
        scheduler_tick()
        return Job.objects.get(id=job.id).status != JobStatus.RUNNING

    wait_until(settled, timeout=60, interval=0.2, message="the lost attempt to be settled")
    job.refresh_from_db()
    assert job.status == JobStatus.RETRYING
    assert job.logs.get(to_status=JobStatus.RETRYING).context["reason"] == "worker_lost"
    assert ledger.lease_id(job.id, 1) not in ledger.ledger_leases()  # released after the commit


@pytest.mark.timeout(900)
def test_the_quick_chaos_run_loses_nothing_and_runs_no_attempt_twice():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    done = subprocess.run(
        [sys.executable, "-m", "bench.chaos", "--quick", "--timeout", "600"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-20000:]
    (summary,) = re.findall(r"^chaos: jobs=.*$", done.stdout, flags=re.MULTILINE)
    assert "lost=0 duplicates=0" in summary, output[-20000:]
    assert "order_violations=0" in summary
    assert summary.endswith("-> PASS")
    faults = re.search(
        r"faults=(\d+) \(worker_kill=(\d+) redis_restart=(\d+) redis_flush=(\d+) "
        r"postgres_restart=(\d+) scheduler_kill=(\d+)\)",
        summary,
    )
    assert faults is not None, summary
    total, kills, restarts, flushes, pg_restarts, scheduler_kills = map(int, faults.groups())
    assert kills >= 3 and restarts == flushes == pg_restarts == scheduler_kills == 1
    assert total == kills + restarts + flushes + pg_restarts + scheduler_kills
