"""The scheduling engine end to end: real worker and scheduler processes, real Redis and
PostgreSQL. Timeouts in ``wait_until`` are hang guards only; nothing here asserts a duration."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

import tests.e2e.handlers  # noqa: F401  (registers the test-only job types here too)
from jobs.engine import ledger
from jobs.engine.publish import Delivery, publish
from jobs.models import DeadLetter, DeadLetterReason, Job, JobStatus
from tests.harness import wait_until

pytestmark = pytest.mark.e2e

TERMINAL = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)
TEST_TYPES = {"DRACONIC_HANDLER_MODULES": "tests.e2e.handlers"}


def submit(api: Any, **body: Any) -> dict[str, Any]:
    response = api.post("/jobs/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def wait_terminal(ids: list[str], platform: Any, timeout: float = 120) -> list[Job]:
    def done() -> list[Job] | None:
        jobs = list(Job.objects.filter(id__in=ids, status__in=TERMINAL))
        return jobs if len(jobs) == len(ids) else None

    return wait_until(done, timeout=timeout, message=f"{len(ids)} jobs to end\n{platform.logs()}")


def test_critical_jobs_start_before_high_normal_and_low_and_fifo_holds(
    platform, api, settings, tmp_path
):
    settings.MAX_CPU_UNITS = 64
    platform.start_worker(concurrency=1, **TEST_TYPES)
    platform.start_scheduler(**TEST_TYPES)
    # The only worker process is busy until the gate opens: all eight wait in the queues
    # however long submitting and admitting them takes on a loaded machine.
    gate = tmp_path / "gate"
    blocker = submit(api, type="gate", priority="critical", payload={"path": str(gate)})
    wait_until(
        lambda: Job.objects.filter(id=blocker["id"], status=JobStatus.RUNNING).exists(),
        message=platform.logs(),
    )
    order = [
        ("low", 1),
        ("normal", 1),
        ("high", 1),
        ("critical", 1),
        ("low", 2),
        ("normal", 2),
        ("high", 2),
        ("critical", 2),
    ]
    ids = {submit(api, type="noop", priority=p, payload={"n": n})["id"]: (p, n) for p, n in order}
    # All eight are admitted (queued) while the only worker process is still busy.
    wait_until(
        lambda: Job.objects.filter(id__in=ids, status=JobStatus.QUEUED).count() == 8,
        message=platform.logs(),
    )
    gate.touch()
    jobs = wait_terminal([*ids, blocker["id"]], platform)
    started = [ids[str(j.id)] for j in sorted(jobs, key=lambda j: j.started_at) if str(j.id) in ids]
    assert started == [
        ("critical", 1),
        ("critical", 2),
        ("high", 1),
        ("high", 2),
        ("normal", 1),
        ("normal", 2),
        ("low", 1),
        ("low", 2),
    ]


def test_running_jobs_never_hold_more_than_the_capacity(platform, api, settings):
    settings.MAX_CPU_UNITS = 4
    settings.MAX_MEMORY_MB = 1000
    platform.start_worker(concurrency=4)
    platform.start_scheduler()
    ids = [
        submit(
            api,
            type="noop",
            payload={"seconds": 0.2},
            resource_requirements={"cpu_units": 1 + i % 3, "memory_mb": 100 + (i * 137) % 500},
        )["id"]
        for i in range(24)
    ]
    samples: list[tuple[int, int, int, int]] = []
    stop = threading.Event()

    def sample() -> None:
        try:
            while not stop.is_set():
                rows = Job.objects.filter(status__in=(JobStatus.QUEUED, JobStatus.RUNNING))
                cpu = sum(r.cpu_units for r in rows)
                mem = sum(r.memory_mb for r in rows)
                usage = ledger.ledger_usage()
                samples.append((cpu, mem, usage.cpu_units, usage.memory_mb))
                stop.wait(0.02)
        finally:
            connection.close()

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        jobs = wait_terminal(ids, platform)
    finally:
        stop.set()
        sampler.join()
    assert all(j.status == JobStatus.COMPLETED for j in jobs)
    assert len(samples) > 5
    assert max(s[0] for s in samples) <= 4 and max(s[2] for s in samples) <= 4
    assert max(s[1] for s in samples) <= 1000 and max(s[3] for s in samples) <= 1000
    assert max(s[0] for s in samples) >= 2  # it did run jobs side by side
    wait_until(lambda: ledger.ledger_usage().leases == 0, message="ledger to drain")
    assert ledger.ledger_usage().cpu_units == 0


def test_a_big_job_that_does_not_fit_lets_small_ones_pass(platform, api, settings, tmp_path):
    settings.MAX_CPU_UNITS = 4
    settings.DRACONIC_AGING_SECONDS = 3600  # the guard stays out of this test
    platform.start_worker(concurrency=4, **TEST_TYPES)
    platform.start_scheduler(**TEST_TYPES)
    # The long job holds its CPU until the gate opens, not for a guessed number of seconds.
    gate = tmp_path / "gate"
    long = submit(api, type="gate", payload={"path": str(gate)})["id"]
    wait_until(
        lambda: Job.objects.filter(id=long, status=JobStatus.RUNNING).exists(),
        message=platform.logs(),
    )
    big = submit(api, type="noop", resource_requirements={"cpu_units": 4})["id"]
    small = [submit(api, type="noop", payload={"seconds": 0.2})["id"] for _ in range(5)]
    # The small ones run beside the long job while the big one (older) waits for all 4 CPUs.
    done_small = wait_terminal(small, platform)
    assert {j.status for j in done_small} == {JobStatus.COMPLETED}
    assert Job.objects.get(id=big).status == JobStatus.PENDING
    assert Job.objects.get(id=long).status == JobStatus.RUNNING
    gate.touch()
    jobs = {str(j.id): j for j in wait_terminal([long, big], platform)}
    assert jobs[big].status == JobStatus.COMPLETED
    assert jobs[big].started_at >= jobs[long].completed_at


def test_a_starving_big_job_holds_back_the_small_ones_behind_it(platform, api, settings):
    settings.MAX_CPU_UNITS = 4
    settings.DRACONIC_AGING_SECONDS = 0  # the big job starves at once: capacity is kept for it
    platform.start_worker(concurrency=4)
    platform.start_scheduler()
    long = submit(api, type="noop", payload={"seconds": 2})["id"]
    wait_until(
        lambda: Job.objects.filter(id=long, status=JobStatus.RUNNING).exists(),
        message=platform.logs(),
    )
    big = submit(api, type="noop", resource_requirements={"cpu_units": 4})["id"]
    small = [submit(api, type="noop", payload={"seconds": 0.2})["id"] for _ in range(5)]
    jobs = {str(j.id): j for j in wait_terminal([long, big, *small], platform)}
    assert {j.status for j in jobs.values()} == {JobStatus.COMPLETED}
    assert all(jobs[s].started_at >= jobs[big].started_at for s in small)


def test_a_diamond_runs_in_dependency_order(platform, api):
    platform.start_worker(concurrency=2)
    platform.start_scheduler()
    body = {
        "jobs": [
            {"key": "a", "type": "noop", "payload": {"seconds": 0.2}},
            {"key": "b", "type": "noop", "depends_on": ["a"]},
            {"key": "c", "type": "noop", "payload": {"seconds": 0.3}, "depends_on": ["a"]},
            {"key": "d", "type": "noop", "depends_on": ["b", "c"]},
        ]
    }
    response = api.post("/jobs/batch/", body, format="json")
    assert response.status_code == 201, response.content
    keys = response.json()["keys"]
    jobs = {str(j.id): j for j in wait_terminal(list(keys.values()), platform)}
    a, b, c, d = (jobs[keys[k]] for k in "abcd")
    assert all(j.status == JobStatus.COMPLETED for j in (a, b, c, d))
    assert b.started_at >= a.completed_at and c.started_at >= a.completed_at
    assert d.started_at >= max(b.completed_at, c.completed_at)


def test_a_child_of_an_already_completed_parent_runs(platform, api):
    platform.start_worker()
    platform.start_scheduler()
    parent = submit(api, type="noop")["id"]
    wait_terminal([parent], platform)
    child = submit(api, type="noop", depends_on=[parent])
    assert child["status"] == "pending"
    (done,) = wait_terminal([child["id"]], platform)
    assert done.status == JobStatus.COMPLETED


def test_a_failed_parent_cancels_its_descendants_with_the_reason(platform, api):
    platform.start_worker()
    platform.start_scheduler()
    body = {
        "jobs": [
            {"key": "parent", "type": "fail", "payload": {"permanent": True}},
            {"key": "child", "type": "noop", "depends_on": ["parent"]},
            {"key": "grandchild", "type": "noop", "depends_on": ["child"]},
        ]
    }
    keys = api.post("/jobs/batch/", body, format="json").json()["keys"]
    jobs = {str(j.id): j for j in wait_terminal(list(keys.values()), platform)}
    assert jobs[keys["parent"]].status == JobStatus.FAILED
    for key in ("child", "grandchild"):
        job = jobs[keys[key]]
        assert job.status == JobStatus.CANCELLED
        assert keys["parent"] in job.error or keys["child"] in job.error
        assert job.started_at is None


def test_a_failing_job_retries_with_growing_delays_then_lands_in_the_dlq_and_can_be_redriven(
    platform, api, staff_api
):
    platform.start_worker()
    platform.start_scheduler()
    job_id = submit(api, type="fail", max_attempts=3)["id"]
    (job,) = wait_terminal([job_id], platform)
    assert job.status == JobStatus.FAILED
    assert job.attempt == 3
    delays = [log.context["retry_in"] for log in job.logs.filter(to_status=JobStatus.RETRYING)]
    assert len(delays) == 2 and delays[0] < delays[1]
    letter = DeadLetter.objects.get(job_id=job_id, requeued_at__isnull=True)
    assert letter.reason == DeadLetterReason.MAX_ATTEMPTS
    assert (
        letter.attempts == 3
        and "always fails" in letter.error
        and "HandlerError" in letter.traceback
    )
    listed = staff_api.get("/admin/dlq/").json()
    assert [row["job"]["id"] for row in listed["results"]] == [job_id]

    assert staff_api.post(f"/admin/dlq/{job_id}/retry").status_code == 200
    wait_until(lambda: Job.objects.get(id=job_id).attempt > 3, message=platform.logs())
    (again,) = wait_terminal([job_id], platform)
    assert again.status == JobStatus.FAILED and again.attempt == 6  # a fresh budget of 3
    assert DeadLetter.objects.filter(job_id=job_id).count() == 2
    assert DeadLetter.objects.get(job_id=job_id, requeued_at__isnull=False).requeued_at is not None


def test_a_non_retryable_error_skips_the_retries(platform, api):
    platform.start_worker()
    platform.start_scheduler()
    job_id = submit(api, type="fail", max_attempts=5, payload={"permanent": True})["id"]
    (job,) = wait_terminal([job_id], platform)
    assert job.status == JobStatus.FAILED and job.attempt == 1
    assert DeadLetter.objects.get(job_id=job_id).reason == DeadLetterReason.NON_RETRYABLE


def test_a_job_over_its_timeout_fails_as_a_timeout(platform, api):
    platform.start_worker()
    platform.start_scheduler()
    job_id = submit(api, type="noop", payload={"seconds": 30}, timeout_seconds=1, max_attempts=1)[
        "id"
    ]
    (job,) = wait_terminal([job_id], platform)
    assert job.status == JobStatus.FAILED
    assert DeadLetter.objects.get(job_id=job_id).reason == DeadLetterReason.TIMEOUT


def test_a_duplicate_delivery_does_not_run_the_handler_twice(platform, api, tmp_path):
    runs = tmp_path / "runs.txt"
    platform.start_worker(concurrency=2, **TEST_TYPES)
    platform.start_scheduler(**TEST_TYPES)
    job_id = submit(api, type="count_runs", payload={"path": str(runs), "seconds": 0.5})["id"]
    job = wait_until(
        lambda: Job.objects.filter(id=job_id, attempt=1).exclude(status=JobStatus.PENDING).first(),
        message=platform.logs(),
    )
    # The broker delivers the same message twice more (as after a redelivery).
    publish([Delivery(job.id, 1, job.priority, job.timeout_seconds, job.type)] * 2)
    (done,) = wait_terminal([job_id], platform)
    assert done.status == JobStatus.COMPLETED
    wait_until(lambda: "skipped" in platform.logs(), message="the duplicates to be delivered")
    assert runs.read_text().splitlines() == [f"{job_id}:1"]
    assert done.logs.filter(to_status=JobStatus.RUNNING).count() == 1


def test_cancelling_a_running_job_stops_it_and_frees_its_resources(platform, api):
    platform.start_worker(**TEST_TYPES)
    platform.start_scheduler(**TEST_TYPES)
    cooperative = submit(api, type="noop", payload={"seconds": 60})["id"]
    stubborn = submit(api, type="busy_wait", payload={"seconds": 60})["id"]
    child = submit(api, type="noop", depends_on=[cooperative])["id"]
    wait_until(
        lambda: (
            Job.objects.filter(id__in=[cooperative, stubborn], status=JobStatus.RUNNING).count()
            == 2
        ),
        message=platform.logs(),
    )
    for job_id in (cooperative, stubborn):
        response = api.patch(f"/jobs/{job_id}/cancel")
        assert response.status_code == 200 and response.json()["cancel_requested"] is True
    jobs = {str(j.id): j for j in wait_terminal([cooperative, stubborn, child], platform)}
    assert {j.status for j in jobs.values()} == {JobStatus.CANCELLED}
    wait_until(lambda: ledger.ledger_usage().leases == 0, message="ledger to drain")
