"""External worker pools end to end (issue 14 item 3): the server (daphne), the scheduler and
the pool's worker (``draconic worker`` from the SDK) as separate real processes; the worker
sees neither Draconic's database nor its settings, only the worker API and the broker."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from jobs.models import DeadLetter, DeadLetterReason, ExecutionLog, Job, JobStatus
from tests.e2e.external_pool import (
    OWN_DATABASE,
    call,
    new_token,
    start_django_pool_worker,
    start_pool_worker,
    start_web,
)
from tests.e2e.test_scheduling import submit, wait_terminal
from tests.harness import wait_until

pytestmark = pytest.mark.e2e
FAST = {"DRACONIC_LEASE_SECONDS": "2", "DRACONIC_POOL_LIVE_SECONDS": "4"}


@pytest.fixture
def server(platform: Any, settings: Any) -> dict[str, str]:
    """The server and the scheduler, a pool token; the pool's worker is the test's to start."""
    settings.DRACONIC_LEASE_SECONDS = 2
    settings.DRACONIC_POOL_LIVE_SECONDS = 4
    base = start_web(platform, **FAST)
    platform.start_scheduler(**FAST)
    return {"base": base, "token": new_token()}


def start(platform: Any, server: dict[str, str], name: str = "pool-worker") -> None:
    start_pool_worker(platform, name, server["base"], server["token"])
    wait_until(
        lambda: "registered" in platform.log_tail(name) or platform.check(name),
        timeout=120,
        message=f"{name} to register\n{platform.logs()}",
    )


def runs(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_job_runs_on_the_external_pool_with_its_log_lines_and_progress(platform, server, api):
    start(platform, server)
    job_id = submit(api, type="ext.echo", payload={"n": 21})["id"]
    (job,) = wait_terminal([job_id], platform)
    assert job.status == JobStatus.COMPLETED, platform.logs()
    assert job.result == {"doubled": 42, "database_url": OWN_DATABASE}
    assert job.worker.startswith("ext/pool-worker")
    lines = list(ExecutionLog.objects.filter(job_id=job_id).values_list("message", "context"))
    assert ("echo started", {"n": 21}) in lines
    assert ("progress: 50%", {"progress": 0.5}) in lines
    assert ("progress: updated", {"progress": {"step": "done"}}) in lines


def test_an_invalid_payload_of_a_pool_type_is_a_400_naming_the_field(platform, server, api):
    start(platform, server)
    response = api.post("/jobs/", {"type": "ext.echo", "payload": {"n": "x"}}, format="json")
    assert response.status_code == 400
    assert "payload.n" in str(response.json())


def test_a_sigkilled_external_worker_job_runs_again_once(platform, server, api, tmp_path):
    path = tmp_path / "runs.txt"
    start(platform, server, "doomed")
    body = {"path": str(path), "seconds": 3}
    job_id = submit(api, type="ext.count_runs", payload=body, max_attempts=3)["id"]
    wait_until(lambda: runs(path), timeout=120, message=platform.logs())
    platform.kill("doomed", signal.SIGKILL)
    start(platform, server, "rescuer")
    (job,) = wait_terminal([job_id], platform)
    assert (job.status, job.attempt) == (JobStatus.COMPLETED, 2), platform.logs()
    assert runs(path) == [f"{job_id}:1", f"{job_id}:2"]
    lost = job.logs.get(to_status=JobStatus.RETRYING)
    assert lost.context["reason"] == DeadLetterReason.WORKER_LOST


def test_a_sigstopped_worker_late_result_is_refused_and_the_job_completes_once(
    platform, server, api, tmp_path
):
    path = tmp_path / "runs.txt"
    start(platform, server, "sleepy")
    body = {"path": str(path), "seconds": 6}
    job_id = submit(api, type="ext.count_runs", payload=body, max_attempts=3)["id"]
    wait_until(lambda: runs(path), timeout=120, message=platform.logs())
    sleepy = platform.pid("sleepy")  # its session's group: the main process and its child
    os.killpg(sleepy, signal.SIGSTOP)  # past its lease: the server gives the attempt up
    try:
        wait_until(
            lambda: Job.objects.filter(id=job_id, attempt__gte=2).exists(),
            timeout=120,
            message=platform.logs(),
        )
        start(platform, server, "rescuer")
        (job,) = wait_terminal([job_id], platform)
    finally:
        os.killpg(sleepy, signal.SIGCONT)
    assert (job.status, job.attempt, job.result) == (JobStatus.COMPLETED, 2, {"attempt": 2})
    wait_until(
        lambda: "refused this attempt's late result" in platform.log_tail("sleepy", 20000),
        timeout=120,
        message=platform.logs(),
    )
    job.refresh_from_db()
    assert (job.status, job.attempt, job.result) == (JobStatus.COMPLETED, 2, {"attempt": 2})
    assert job.logs.filter(to_status=JobStatus.COMPLETED).count() == 1
    assert runs(path) == [f"{job_id}:1", f"{job_id}:2"]


def test_a_worker_token_cannot_complete_another_pool_job_or_read_the_jobs(
    platform, server, api, tmp_path
):
    start(platform, server)
    job_id = submit(api, type="ext.wait", payload={"seconds": 60})["id"]
    wait_until(lambda: Job.objects.filter(id=job_id, status=JobStatus.RUNNING).exists())
    other = new_token("other")
    kind = {"name": "other.thing", "payload_schema": {"type": "object"}}
    registered = call(
        server["base"],
        other,
        "POST",
        "/workers/pools/register",
        {"pool": "other", "worker": "o1", "concurrency": 1, "types": [kind]},
    )
    assert registered[0] == 200, registered
    attempt = {"job_id": job_id, "attempt": 1, "result": {"forged": True}}
    status, body = call(server["base"], other, "POST", "/workers/attempts/complete", attempt)
    assert status == 403, body
    assert call(server["base"], server["token"], "GET", "/jobs/")[0] == 403
    assert call(server["base"], other, "GET", f"/jobs/{job_id}")[0] == 403
    assert Job.objects.get(id=job_id).status == JobStatus.RUNNING


def test_a_cancel_reaches_a_running_external_job(platform, server, api):
    start(platform, server)
    job_id = submit(api, type="ext.wait", payload={"seconds": 120})["id"]
    wait_until(
        lambda: Job.objects.filter(id=job_id, status=JobStatus.RUNNING).exists(),
        timeout=120,
        message=platform.logs(),
    )
    assert api.patch(f"/jobs/{job_id}/cancel").status_code == 200
    (job,) = wait_terminal([job_id], platform)
    assert job.status == JobStatus.CANCELLED, platform.logs()
    assert job.logs.filter(message="attempt 1 stopped: cancelled").exists()


def test_a_cancelled_external_job_that_ignores_it_is_terminated(platform, server, api, tmp_path):
    start(platform, server)
    body = {"path": str(tmp_path / "runs.txt"), "seconds": 120}  # sleeps, never checks
    job_id = submit(api, type="ext.count_runs", payload=body)["id"]
    wait_until(
        lambda: Job.objects.filter(id=job_id, status=JobStatus.RUNNING).exists(),
        timeout=120,
        message=platform.logs(),
    )
    assert api.patch(f"/jobs/{job_id}/cancel").status_code == 200
    (job,) = wait_terminal([job_id], platform)
    assert job.status == JobStatus.CANCELLED, platform.logs()
    # The scheduler's revoke (terminate) reached the pool's worker over the broker.
    wait_until(
        lambda: "Terminating" in platform.log_tail("pool-worker", 20000),
        timeout=60,
        message=platform.logs(),
    )


def test_a_job_past_its_timeout_fails_as_a_timeout(platform, server, api, tmp_path):
    start(platform, server)
    body = {"path": str(tmp_path / "runs.txt"), "seconds": 60}
    job_id = submit(api, type="ext.count_runs", payload=body, timeout_seconds=1, max_attempts=1)[
        "id"
    ]
    (job,) = wait_terminal([job_id], platform)
    assert job.status == JobStatus.FAILED, platform.logs()
    assert DeadLetter.objects.get(job_id=job_id).reason == DeadLetterReason.TIMEOUT


def test_a_type_no_live_pool_serves_waits_is_shown_in_health_and_runs_later(
    platform, server, api, staff_api
):
    start(platform, server)
    platform.stop("pool-worker")
    wait_until(
        lambda: (
            "ext.echo" in staff_api.get("/admin/health").json()["checks"]["pools"]["unserved_types"]
        ),
        timeout=60,
    )
    job_id = submit(api, type="ext.echo", payload={"n": 1})["id"]
    (reason,) = api.get(f"/jobs/{job_id}").json()["waiting_on"]
    assert reason["message"] == "no live worker pool serves type ext.echo"
    assert Job.objects.get(id=job_id).status == JobStatus.PENDING
    start(platform, server)
    (job,) = wait_terminal([job_id], platform)
    assert job.status == JobStatus.COMPLETED


def test_manage_py_draconic_worker_runs_a_job_with_the_team_settings_and_database(
    platform, server, api, tmp_path
):
    team_db = tmp_path / "team.sqlite3"
    start_django_pool_worker(
        platform, "django-worker", server["base"], server["token"], team_db=str(team_db)
    )
    wait_until(
        lambda: (
            "registered" in platform.log_tail("django-worker") or platform.check("django-worker")
        ),
        timeout=120,
        message=platform.logs(),
    )
    job_id = submit(api, type="ext.team_signup", payload={"username": "ada"})["id"]
    (job,) = wait_terminal([job_id], platform)
    assert job.status == JobStatus.COMPLETED, platform.logs()
    assert job.result == {
        "users": ["ada"],
        "settings": "the team's own settings",
        "database": str(team_db),
    }
