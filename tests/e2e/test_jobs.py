"""Jobs run end to end: submitted over REST, executed by a real Celery worker process. A noop
job's whole history, the four seed job types with their results and side effects (an email
file, an export file), and the health endpoint of a live platform."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from jobs.models import DeadLetterReason, Job, JobStatus
from tests.harness import wait_until

pytestmark = pytest.mark.e2e

FILE_BACKEND = "django.core.mail.backends.filebased.EmailBackend"


@pytest.fixture
def storage(settings: Any, tmp_path: Path) -> dict[str, Path]:
    """Point the worker's mail and export directories into this test's tmp_path (the worker
    inherits them through ``process_env``, so this must run before ``start_worker``)."""
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    settings.DRACONIC_EXPORT_DIR = tmp_path / "exports"
    return {"mail": tmp_path / "mail", "exports": tmp_path / "exports"}


@pytest.fixture
def running(platform: Any, storage: dict[str, Path]) -> Any:
    platform.start_worker(EMAIL_BACKEND=FILE_BACKEND)
    platform.start_scheduler()
    return platform


def submit(api: Any, job_type: str, payload: dict[str, Any]) -> str:
    response = api.post("/jobs/", {"type": job_type, "payload": payload}, format="json")
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def finished(platform: Any, job_id: str) -> Job:
    """Wait for ``job_id`` to reach a terminal state and insist that it completed."""

    def terminal() -> Job | None:
        return Job.objects.filter(
            id=job_id, status__in=[JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED]
        ).first()

    job = wait_until(terminal, timeout=120, message=f"job {job_id} to finish\n{platform.logs()}")
    assert job.status == JobStatus.COMPLETED, f"{job.status}: {job.error}\n{platform.logs()}"
    return job


def test_every_seed_type_completes_on_a_real_worker(running, api, user, storage):
    ids = {
        "email": submit(
            api,
            "send_email",
            {"to": ["ann@example.com", "ben@example.com"], "subject": "Done", "body": "All good."},
        ),
        "rows": submit(
            api, "data_export", {"format": "csv", "rows": [{"a": 1, "b": "x"}, {"a": 2}]}
        ),
        "stats": submit(api, "data_processing", {"data": [1, 2, 3, 4], "percentiles": [50]}),
        "report": submit(api, "report_generation", {"title": "Standalone", "format": "html"}),
        # last, so that every job above exists when it runs
        "query": submit(api, "data_export", {"format": "json", "query": {"source": "jobs"}}),
    }
    jobs = {name: finished(running, job_id) for name, job_id in ids.items()}

    email = jobs["email"].result
    assert email["recipients"] == 2
    [mail_file] = list(storage["mail"].glob("*.log"))
    sent = message_from_bytes(mail_file.read_bytes(), policy=policy.default)
    assert (sent["Subject"], sent["Message-ID"]) == ("Done", email["message_id"])

    rows = jobs["rows"].result
    content = Path(rows["path"]).read_bytes()
    assert Path(rows["path"]).parent == (storage["exports"] / str(user.pk)).resolve()
    assert rows["sha256"] == hashlib.sha256(content).hexdigest()
    assert list(csv.reader(io.StringIO(content.decode()))) == [["a", "b"], ["1", "x"], ["2", ""]]

    exported = json.loads(Path(jobs["query"].result["path"]).read_text())
    assert set(ids.values()) == {row["id"] for row in exported}
    assert jobs["query"].result["rows"] == len(ids)

    stats = jobs["stats"].result
    assert (stats["mean"], stats["median"], stats["percentiles"]) == (2.5, 2.5, {"50": 2.5})
    assert stats["variance"] == pytest.approx(5 / 3)

    report = jobs["report"].result
    assert report["sections"] == []
    assert "<h1>Standalone</h1>" in report["html"]
    logged = set(jobs["stats"].logs.values_list("message", flat=True))
    assert {"computing statistics", "statistics computed"} <= logged


def test_a_report_includes_the_results_of_its_processing_and_export_parents(running, api):
    response = api.post(
        "/jobs/batch/",
        {
            "jobs": [
                {"key": "stats", "type": "data_processing", "payload": {"data": [10, 20, 30]}},
                {
                    "key": "export",
                    "type": "data_export",
                    "payload": {"format": "json", "rows": [{"n": 1}], "filename": "parent"},
                },
                {
                    "key": "report",
                    "type": "report_generation",
                    "depends_on": ["stats", "export"],
                    "payload": {"title": "Pipeline <1>"},
                },
            ]
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    keys = response.json()["keys"]

    report = finished(running, keys["report"])
    stats = Job.objects.get(id=keys["stats"])
    export = Job.objects.get(id=keys["export"])
    assert stats.status == export.status == JobStatus.COMPLETED
    assert report.started_at >= max(stats.completed_at, export.completed_at)

    sections = {s["job_id"]: s for s in report.result["sections"]}
    assert set(sections) == {keys["stats"], keys["export"]}
    assert sections[keys["stats"]]["type"] == "data_processing"
    assert sections[keys["stats"]]["summary"]["mean"] == stats.result["mean"] == 20
    assert sections[keys["stats"]]["summary"]["p50"] == 20
    assert sections[keys["export"]]["summary"]["sha256"] == export.result["sha256"]
    assert sections[keys["export"]]["summary"]["path"] == export.result["path"]
    markdown = report.result["markdown"]
    assert markdown.startswith("# Pipeline &lt;1&gt;\n")
    assert f"## data_processing {keys['stats']}" in markdown
    assert f"| sha256 | {export.result['sha256']} |" in markdown


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses every connection: bound here and never listened on,
    so no other process (another test run's server) can take it while the test runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def test_an_unreachable_mail_server_is_retried_then_dead_lettered(
    platform, api, storage, refused_port
):
    """Nothing listens on the mail server's port: a retryable failure per attempt."""
    platform.start_worker(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(refused_port),
    )
    platform.start_scheduler()
    response = api.post(
        "/jobs/",
        {
            "type": "send_email",
            "max_attempts": 2,
            "payload": {"to": "ann@example.com", "subject": "s", "body": "b"},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]

    job = wait_until(
        lambda: Job.objects.filter(id=job_id, status=JobStatus.FAILED).first(),
        timeout=120,
        message=f"job {job_id} to fail\n{platform.logs()}",
    )
    assert job.attempt == 2  # retried once: a connection failure is not permanent
    assert "cannot reach the mail server" in job.error
    [letter] = job.dead_letters.all()
    assert letter.reason == DeadLetterReason.MAX_ATTEMPTS


def test_a_refused_payload_stored_around_the_api_fails_without_retry(running, job_factory):
    """A payload that the API would refuse (written by an older version, say) is permanent."""
    job = job_factory(type="data_processing", payload={"data": []}, max_attempts=3)

    def failed() -> Job | None:
        return Job.objects.filter(id=job.id, status=JobStatus.FAILED).first()

    failed_job = wait_until(failed, timeout=120, message=f"job to fail\n{running.logs()}")
    assert failed_job.attempt == 1
    assert "payload.data" in failed_job.error
    assert failed_job.dead_letters.get().reason == DeadLetterReason.NON_RETRYABLE


def test_a_submitted_noop_job_completes_on_a_real_worker(platform, api):
    platform.start_worker()
    platform.start_scheduler()
    response = api.post("/jobs/", {"type": "noop", "priority": "high"}, format="json")
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]

    def done():
        return Job.objects.filter(id=job_id, status=JobStatus.COMPLETED).first()

    job = wait_until(done, message=f"job {job_id} to complete\n{platform.logs()}")
    assert job.result == {"ok": True, "slept": 0.0}
    assert job.attempt == 1
    assert job.worker.startswith("worker@")
    statuses = list(job.logs.exclude(to_status="").values_list("to_status", flat=True))
    assert statuses == ["pending", "queued", "running", "completed"]


def test_health_is_200_with_a_live_worker_and_scheduler(
    platform: Any, staff_api: APIClient
) -> None:
    platform.start_worker()
    platform.start_scheduler()

    def healthy() -> Any:
        response = staff_api.get("/admin/health")
        return response if response.status_code == 200 else None

    response = wait_until(
        healthy, timeout=90, interval=0.5, message=f"a healthy platform\n{platform.logs()}"
    )
    assert response.json()["status"] == "ok"
    assert response.json()["failing"] == []
