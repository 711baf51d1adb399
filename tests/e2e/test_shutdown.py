"""Stopping is not failing: a worker stopped with SIGTERM (or Ctrl-C) lets short jobs finish
and hands back long ones uncharged; a worker restarted after a crash frees its previous
process's leases at once. Real worker and scheduler processes; the worker of ``make run`` runs
under ``draconic.supervise`` and is signalled the way honcho and Ctrl-C signal it (its whole
process group). Timeouts are hang guards; nothing asserts a duration."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import tests.e2e.handlers  # noqa: F401  (registers the test-only job types here too)
from jobs.engine import ledger
from jobs.models import DeadLetter, ExecutionLog, Job, JobStatus
from tests.e2e.test_scheduling import TEST_TYPES, submit, wait_terminal
from tests.harness import Supervisor, wait_until, worker_argv

pytestmark = pytest.mark.e2e


def start_supervised_worker(platform: Supervisor, name: str, **env: str) -> Any:
    """A worker the way the Procfile starts it: under ``python -m draconic.supervise``."""
    argv = [sys.executable, "-m", "draconic.supervise", name, "--", *worker_argv(name)]
    return platform.start(name, argv, platform.environment(**TEST_TYPES, **env))


def stop_and_wait(platform: Supervisor, name: str, how: str) -> None:
    """Stop worker ``name`` as ``how`` says and wait until it has exited by itself."""
    proc = platform.procs[name]
    if how == "group-SIGTERM":  # honcho stopping make run: the supervisor's process group
        os.killpg(proc.pid, signal.SIGTERM)
    elif how == "group-SIGINT":  # Ctrl-C reaching the supervisor's process group
        os.killpg(proc.pid, signal.SIGINT)
    elif how == "lone-SIGINT-twice":  # Ctrl-C twice on a lone `make worker`: a cold shutdown
        proc.send_signal(signal.SIGINT)
        wait_until(lambda: "shutting down" in platform.log_tail(name), message=platform.logs())
        proc.send_signal(signal.SIGINT)
    else:  # a lone `make worker` or a container: SIGTERM to the worker itself
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{name} did not stop:\n{platform.logs()}") from None
    platform.procs.pop(name)


def runs(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def running(*ids: str) -> bool:
    return Job.objects.filter(id__in=ids, status=JobStatus.RUNNING).count() == len(ids)


def test_a_job_shorter_than_the_grace_completes_during_a_sigterm_shutdown(platform, api, tmp_path):
    start_supervised_worker(platform, "worker", DRACONIC_SHUTDOWN_GRACE_SECONDS="60")
    platform.start_scheduler(**TEST_TYPES)
    path = tmp_path / "runs.txt"
    job_id = submit(
        api, type="count_runs", payload={"path": str(path), "seconds": 2}, max_attempts=1
    )["id"]
    wait_until(lambda: running(job_id) and runs(path), message=platform.logs())
    stop_and_wait(platform, "worker", "group-SIGTERM")
    job = Job.objects.get(id=job_id)
    assert (job.status, job.attempt, runs(path)) == (JobStatus.COMPLETED, 1, [f"{job_id}:1"])
    assert not DeadLetter.objects.exists()
    log = platform.log_tail("worker", 100_000)
    assert "shutting down" in log and "DRACONIC_SHUTDOWN_GRACE_SECONDS" in log
    wait_until(lambda: ledger.ledger_usage().leases == 0, message="ledger to drain")


@pytest.mark.parametrize(
    "how", ["group-SIGTERM", "group-SIGINT", "lone-SIGTERM", "lone-SIGINT-twice"]
)
def test_a_job_longer_than_the_grace_is_handed_back_uncharged_and_runs_again(
    platform, api, tmp_path, how
):
    # A cold shutdown (the second Ctrl-C) hands back at once, without waiting out the grace.
    seconds = "600" if how == "lone-SIGINT-twice" else "1"
    grace = {"DRACONIC_SHUTDOWN_GRACE_SECONDS": seconds}
    if how.startswith("lone"):
        platform.start_worker("worker", **TEST_TYPES, **grace)
    else:
        start_supervised_worker(platform, "worker", **grace)
    platform.start_scheduler(**TEST_TYPES)
    path = tmp_path / "runs.txt"
    ids = [
        submit(
            api,
            type="slow_first_attempt",
            payload={"path": str(path), "seconds": 600, "stubborn": stubborn},
            max_attempts=1,
        )["id"]
        for stubborn in (False, True)  # one handler waits on its context, one ignores it
    ]
    wait_until(lambda: running(*ids) and len(runs(path)) == 2, message=platform.logs())
    stop_and_wait(platform, "worker", how)

    for job in Job.objects.filter(id__in=ids):
        # Not failed, not in the DLQ: back to be admitted again, the attempt not charged.
        assert job.status in (JobStatus.PENDING, JobStatus.QUEUED), (job.status, job.error)
        assert job.attempt - job.attempt_offset in (0, 1), (job.attempt, job.attempt_offset)
        handed = ExecutionLog.objects.get(job=job, attempt=1, to_status=JobStatus.PENDING)
        assert "handed back: worker worker@" in handed.message
        assert handed.context["reason"] == "handed_back"
    assert not DeadLetter.objects.exists()
    assert not {f"{i}:1" for i in ids} & set(ledger.ledger_leases())

    platform.start_worker("rescuer", **TEST_TYPES)
    jobs = wait_terminal(ids, platform)
    assert {(j.status, j.attempt, j.attempt_offset) for j in jobs} == {(JobStatus.COMPLETED, 2, 1)}
    assert sorted(runs(path)) == sorted(f"{i}:{a}" for i in ids for a in (1, 2))
    assert not DeadLetter.objects.exists()
    wait_until(lambda: ledger.ledger_usage().leases == 0, message="ledger to drain")


def test_a_worker_killed_and_restarted_under_its_name_frees_its_leases_at_once(
    platform, api, tmp_path, settings
):
    # Leases far longer than any wait below: only the restart can free them.
    settings.DRACONIC_LEASE_SECONDS = 600
    env = {"DRACONIC_LEASE_SECONDS": "600", **TEST_TYPES}
    platform.start_worker("phoenix", **env)
    platform.start_scheduler(**env)
    path = tmp_path / "runs.txt"
    job_id = submit(
        api, type="slow_first_attempt", payload={"path": str(path), "seconds": 600}, max_attempts=2
    )["id"]
    wait_until(lambda: running(job_id) and runs(path), message=platform.logs())
    assert f"{job_id}:1" in ledger.ledger_leases()
    platform.restart("phoenix", signal.SIGKILL)  # the same command: the same worker name

    (job,) = wait_terminal([job_id], platform)
    # The crash is charged (worker_lost, as after a lease expiry), only settled at once.
    assert (job.status, job.attempt, job.attempt_offset) == (JobStatus.COMPLETED, 2, 0)
    lost = ExecutionLog.objects.get(job=job, attempt=1, to_status=JobStatus.RETRYING)
    assert "the worker was restarted" in lost.message
    assert lost.context["reason"] == "worker_lost"
    assert runs(path) == [f"{job_id}:1", f"{job_id}:2"]
    wait_until(lambda: ledger.ledger_usage().leases == 0, message="ledger to drain")


def test_a_pool_process_that_dies_under_its_job_settles_the_attempt_at_once(
    platform, api, tmp_path, settings
):
    settings.DRACONIC_LEASE_SECONDS = 600  # only the worker's main process can settle it in time
    env = {"DRACONIC_LEASE_SECONDS": "600", **TEST_TYPES}
    platform.start_worker("worker", **env)
    platform.start_scheduler(**env)
    path, pid_path = tmp_path / "runs.txt", tmp_path / "pid"
    payload = {"path": str(path), "pid_path": str(pid_path), "seconds": 600}
    job_id = submit(api, type="slow_first_attempt", payload=payload, max_attempts=2)["id"]
    wait_until(lambda: running(job_id) and pid_path.exists(), message=platform.logs())
    os.kill(int(pid_path.read_text()), signal.SIGKILL)  # the pool process, as the OOM killer would

    (job,) = wait_terminal([job_id], platform)
    assert (job.status, job.attempt, job.attempt_offset) == (JobStatus.COMPLETED, 2, 0)
    lost = ExecutionLog.objects.get(job=job, attempt=1, to_status=JobStatus.RETRYING)
    assert "its pool process exited" in lost.message
    assert lost.context["reason"] == "worker_lost"
    wait_until(lambda: ledger.ledger_usage().leases == 0, message="ledger to drain")
