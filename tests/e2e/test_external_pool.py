"""External worker pools end to end (issue 14 item 3): the server (daphne), the scheduler and
the pool's worker (``draconic worker`` from the SDK) as separate real processes; the worker
sees neither Draconic's database nor its settings, only the worker API and the broker."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from jobs.engine import ledger
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


def start(
    platform: Any,
    server: dict[str, str],
    name: str = "pool-worker",
    *,
    concurrency: int = 1,
    options: tuple[str, ...] = (),
) -> None:
    start_pool_worker(
        platform, name, server["base"], server["token"], concurrency=concurrency, options=options
    )
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


def test_a_result_the_server_refuses_fails_the_attempt_with_the_reason(platform, server, api):
    """A NUL in a result used to make the completion a 500-ish DataError the SDK took for a
    crash: the attempt stayed running until its lease expired, then was charged as lost."""
    start(platform, server)
    job_id = submit(api, type="ext.unstorable", payload={})["id"]
    (job,) = wait_terminal([job_id], platform)
    assert job.status == JobStatus.FAILED, platform.logs()
    assert job.error.startswith("the server refused the result:")
    assert "NUL" in job.error
    assert DeadLetter.objects.get(job_id=job_id).reason != DeadLetterReason.WORKER_LOST


def test_a_sigkilled_external_worker_job_runs_again_once_or_goes_to_the_dlq(
    platform, server, api, tmp_path
):
    path, last = tmp_path / "runs.txt", tmp_path / "last.txt"
    start(platform, server, "doomed", concurrency=2)
    # Its first attempt outlasts the wait for the other job to start, however slow that is
    # (a 3 s one could complete before the kill); the second attempt ends at once.
    body = {"path": str(path), "seconds": 600, "stubborn": True}
    job_id = submit(api, type="ext.slow_first_attempt", payload=body, max_attempts=3)["id"]
    body = {"path": str(last), "seconds": 60}
    last_id = submit(api, type="ext.count_runs", payload=body, max_attempts=1)["id"]
    wait_until(lambda: runs(path) and runs(last), timeout=120, message=platform.logs())
    platform.kill("doomed", signal.SIGKILL)
    start(platform, server, "rescuer")
    ended = {str(j.id): j for j in wait_terminal([job_id, last_id], platform)}
    job, dead = ended[job_id], ended[last_id]
    assert (job.status, job.attempt) == (JobStatus.COMPLETED, 2), platform.logs()
    assert runs(path) == [f"{job_id}:1", f"{job_id}:2"]
    lost = job.logs.get(to_status=JobStatus.RETRYING)
    assert lost.context["reason"] == DeadLetterReason.WORKER_LOST
    # Its last attempt lost with its worker: the job is dead-lettered, not run again.
    assert (dead.status, dead.attempt, runs(last)) == (JobStatus.FAILED, 1, [f"{last_id}:1"])
    assert DeadLetter.objects.get(job_id=last_id).reason == DeadLetterReason.WORKER_LOST


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
    wait_until(
        lambda: Job.objects.filter(id=job_id, status=JobStatus.RUNNING).exists(),
        timeout=120,
        message=platform.logs(),
    )
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


# --- stopping is not failing: a graceful stop hands back what outlives the grace -----------


def stop_and_wait(platform: Any, name: str, how: str) -> None:
    """Stop the worker's main process (a container's SIGTERM, or Ctrl-C twice: a cold
    shutdown) and wait until it has exited by itself."""
    proc = platform.procs[name]
    if how == "SIGINT-twice":
        proc.send_signal(signal.SIGINT)
        wait_until(lambda: "shutting down" in platform.log_tail(name), message=platform.logs())
        proc.send_signal(signal.SIGINT)
    else:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=90)  # a hang guard: a worker that never stops fails here
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{name} did not stop:\n{platform.logs()}") from None
    platform.procs.pop(name)


def slow_first_attempts(api: Any, path: Path) -> list[str]:
    """Two jobs whose first attempt lasts 600 s: one waits on its context, one ignores it."""
    return [
        submit(
            api,
            type="ext.slow_first_attempt",
            payload={"path": str(path), "seconds": 600, "stubborn": stubborn},
            max_attempts=1,
        )["id"]
        for stubborn in (False, True)
    ]


def assert_handed_back_uncharged(ids: list[str], worker: str) -> None:
    for job in Job.objects.filter(id__in=ids):
        # Not failed, not in the DLQ: back to be admitted again, the attempt not charged.
        assert job.status in (JobStatus.PENDING, JobStatus.QUEUED), (job.status, job.error)
        assert job.attempt - job.attempt_offset in (0, 1), (job.attempt, job.attempt_offset)
        handed = ExecutionLog.objects.get(job=job, attempt=1, to_status=JobStatus.PENDING)
        assert f"handed back: worker ext/{worker} is shutting down" in handed.message
        assert handed.context["reason"] == "handed_back"
    assert not DeadLetter.objects.exists()
    assert not {f"{i}:1" for i in ids} & set(ledger.ledger_leases())


def test_a_sigterm_lets_a_short_job_finish_and_hands_back_the_long_ones_uncharged(
    platform, server, api, tmp_path
):
    path, short = tmp_path / "runs.txt", tmp_path / "short.txt"
    start(platform, server, "stopping", concurrency=3, options=("--shutdown-grace", "15"))
    ids = slow_first_attempts(api, path)
    # Long enough to be still running when the slow ones have started too (a 1 s one could
    # end before), short enough to end well inside the 15 s grace.
    body = {"path": str(short), "seconds": 5}
    short_id = submit(api, type="ext.count_runs", payload=body, max_attempts=1)["id"]
    wait_until(
        lambda: Job.objects.filter(id__in=[*ids, short_id], status=JobStatus.RUNNING).count() == 3,
        timeout=120,
        message=platform.logs(),
    )
    stop_and_wait(platform, "stopping", "SIGTERM")

    done = Job.objects.get(id=short_id)  # it ended within the grace: completed, as usual
    assert (done.status, done.attempt, runs(short)) == (JobStatus.COMPLETED, 1, [f"{short_id}:1"])
    assert_handed_back_uncharged(ids, "stopping")
    assert "shutting down: taking no new jobs; 3 running get 15s" in platform.log_tail(
        "stopping", 100_000
    )

    start(platform, server, "rescuer", concurrency=2)
    jobs = wait_terminal(ids, platform)
    assert {(j.status, j.attempt, j.attempt_offset) for j in jobs} == {(JobStatus.COMPLETED, 2, 1)}
    assert sorted(runs(path)) == sorted(f"{i}:{a}" for i in ids for a in (1, 2))
    assert not DeadLetter.objects.exists()


def test_a_second_ctrl_c_hands_back_at_once_without_waiting_out_the_grace(
    platform, server, api, tmp_path
):
    path = tmp_path / "runs.txt"
    start(platform, server, "stopping", concurrency=2, options=("--shutdown-grace", "600"))
    ids = slow_first_attempts(api, path)
    wait_until(
        lambda: Job.objects.filter(id__in=ids, status=JobStatus.RUNNING).count() == 2,
        timeout=120,
        message=platform.logs(),
    )
    stop_and_wait(platform, "stopping", "SIGINT-twice")  # well inside the 600 s grace
    assert_handed_back_uncharged(ids, "stopping")
