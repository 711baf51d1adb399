"""Nothing lost: killed workers, lost broker messages, a restarted Redis. Real processes."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

import tests.e2e.handlers  # noqa: F401  (registers the test-only job types here too)
from jobs.engine import ledger
from jobs.models import DeadLetter, DeadLetterReason, Job, JobStatus
from jobs.redis_client import get_redis
from tests.chaos.services import RedisServer
from tests.e2e.test_scheduling import TEST_TYPES, submit, wait_terminal
from tests.harness import free_port, wait_until

pytestmark = pytest.mark.e2e
FAST_LEASE = {"DRACONIC_LEASE_SECONDS": "2", **TEST_TYPES}


def run_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_job_of_a_killed_worker_runs_again_as_a_new_attempt(platform, api, settings, tmp_path):
    settings.DRACONIC_LEASE_SECONDS = 2
    runs = tmp_path / "runs.txt"
    platform.start_worker("doomed", **FAST_LEASE)
    platform.start_scheduler(**FAST_LEASE)
    # Its first attempt outlasts any delay before the kill; the second returns at once, so no
    # lease of 2 s has to be renewed on the rescuer (a stalled renewal would be a third run).
    job_id = submit(
        api,
        type="slow_first_attempt",
        payload={"path": str(runs), "seconds": 600},
        max_attempts=3,
    )["id"]
    wait_until(lambda: run_lines(runs), message=platform.logs())
    platform.kill("doomed", signal.SIGKILL)  # the whole worker: main process and children
    platform.start_worker("rescuer", **FAST_LEASE)
    (job,) = wait_terminal([job_id], platform)
    assert job.status == JobStatus.COMPLETED
    assert job.attempt == 2
    assert run_lines(runs) == [f"{job_id}:1", f"{job_id}:2"]
    lost = job.logs.get(to_status=JobStatus.RETRYING)
    assert lost.context["reason"] == DeadLetterReason.WORKER_LOST
    wait_until(lambda: ledger.ledger_usage().leases == 0, message="ledger to drain")
    assert ledger.ledger_usage().cpu_units == 0


def test_a_worker_lost_on_the_last_attempt_dead_letters_as_worker_lost(
    platform, api, settings, tmp_path
):
    settings.DRACONIC_LEASE_SECONDS = 2
    runs = tmp_path / "runs.txt"
    platform.start_worker("doomed", **FAST_LEASE)
    platform.start_scheduler(**FAST_LEASE)
    job_id = submit(
        api, type="count_runs", payload={"path": str(runs), "seconds": 30}, max_attempts=1
    )["id"]
    wait_until(lambda: run_lines(runs), message=platform.logs())
    platform.kill("doomed", signal.SIGKILL)
    (job,) = wait_terminal([job_id], platform)
    assert job.status == JobStatus.FAILED
    assert DeadLetter.objects.get(job_id=job_id).reason == DeadLetterReason.WORKER_LOST
    wait_until(lambda: ledger.ledger_usage().leases == 0, message="ledger to drain")


def test_queued_jobs_whose_messages_were_flushed_are_republished(platform, api):
    platform.start_scheduler()
    ids = [
        submit(api, type="noop", priority=p)["id"] for p in ("low", "high", "normal", "critical")
    ]
    wait_until(
        lambda: Job.objects.filter(id__in=ids, status=JobStatus.QUEUED).count() == 4,
        message=platform.logs(),
    )
    get_redis().flushdb()  # broker messages and the ledger are gone
    platform.start_worker()
    jobs = wait_terminal(ids, platform)
    assert {j.status for j in jobs} == {JobStatus.COMPLETED}
    assert {j.attempt for j in jobs} == {1}
    wait_until(lambda: ledger.ledger_usage().leases == 0, message="ledger to drain")


@pytest.fixture
def dedicated_redis(tmp_path: Path) -> Any:
    """A redis-server of this test's own (the chaos run's), which it may kill at will."""
    server = RedisServer(tmp_path, free_port())
    server.start()
    yield server
    server.kill()


def test_jobs_survive_a_real_redis_restart(platform, api, settings, dedicated_redis):
    url = f"redis://127.0.0.1:{dedicated_redis.port}/0"
    settings.REDIS_URL = settings.CELERY_BROKER_URL = url
    get_redis.cache_clear()
    env = {"REDIS_URL": url, "CELERY_BROKER_URL": url, "DRACONIC_REQUEUE_AFTER_SECONDS": "3"}
    try:
        platform.start_worker(**env)
        platform.start_scheduler(**env)
        first = [submit(api, type="noop", payload={"seconds": 0.5})["id"] for _ in range(4)]
        wait_until(
            lambda: Job.objects.filter(id__in=first, status=JobStatus.RUNNING).exists(),
            message=platform.logs(),
        )
        dedicated_redis.kill()  # Redis dies with everything in it: queues, ledger, leases
        time.sleep(1)
        dedicated_redis.start()
        get_redis().connection_pool.disconnect()
        later = [submit(api, type="noop")["id"] for _ in range(4)]
        jobs = wait_terminal(first + later, platform, timeout=180)
        assert {j.status for j in jobs} == {JobStatus.COMPLETED}, [(j.id, j.status) for j in jobs]
        wait_until(
            lambda: ledger.ledger_is_present() and ledger.ledger_usage().leases == 0,
            timeout=60,
            message="ledger rebuilt and drained",
        )
    finally:
        get_redis.cache_clear()
