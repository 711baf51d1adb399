"""Exports can be fetched: ``GET /jobs/{id}/export`` streams a completed ``data_export`` job's
file to its owner, from the export storage (``storages["exports"]``), which the handler
writes through too; anyone else, and any job without a file, gets a 404.

Before, the result held only a path on the server, which no client can reach.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import storages
from rest_framework.test import APIClient

from jobs.models import Job, JobStatus
from jobs.types import JobContext, get_handler
from tests.factories import move_to
from tests.harness import wait_until

ROWS = [{"name": "ann", "score": 3}, {"name": "ben, jr.", "score": None}]


@pytest.fixture
def export_dir(settings: Any, tmp_path: Path) -> Path:
    settings.DRACONIC_EXPORT_DIR = tmp_path / "exports"
    return tmp_path / "exports"


def exported(job_factory: Any, owner: Any = None, **payload: Any) -> Job:
    """A data_export job run in this process, the way the worker runs it, then completed."""
    job = job_factory(owner=owner, type="data_export", payload=payload)
    handler = get_handler("data_export")
    assert handler is not None
    return move_to(job, JobStatus.COMPLETED, result=handler.run(JobContext(job)))


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


@pytest.mark.django_db
def test_the_owner_downloads_a_csv_export_as_an_attachment(
    api: APIClient, job_factory: Any, export_dir: Path
) -> None:
    job = exported(job_factory, format="csv", rows=ROWS, filename="people")

    response = api.get(f"/jobs/{job.id}/export", HTTP_ACCEPT="text/csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="people.csv"'
    content = body(response)
    assert content == Path(job.result["path"]).read_bytes()
    assert hashlib.sha256(content).hexdigest() == job.result["sha256"]
    assert content.decode().splitlines()[0] == "name,score"


@pytest.mark.django_db
def test_a_json_export_is_served_as_json(
    api: APIClient, job_factory: Any, export_dir: Path
) -> None:
    job = exported(job_factory, format="json", rows=ROWS)

    response = api.get(f"/jobs/{job.id}/export/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert f'filename="export-{job.id}.json"' in response["Content-Disposition"]
    assert json.loads(body(response)) == ROWS


@pytest.mark.django_db
def test_another_user_gets_a_404(other_api: APIClient, job_factory: Any, export_dir: Path) -> None:
    job = exported(job_factory, format="csv", rows=ROWS)

    response = other_api.get(f"/jobs/{job.id}/export")

    assert response.status_code == 404
    assert "detail" in response.json()


@pytest.mark.django_db
def test_jobs_without_a_file_are_404(api: APIClient, job_factory: Any, export_dir: Path) -> None:
    pending = job_factory(type="data_export", payload={"format": "csv", "rows": ROWS})
    other_type = move_to(job_factory(type="noop"), JobStatus.COMPLETED, result={"ok": True})
    gone = exported(job_factory, format="csv", rows=ROWS)
    Path(gone.result["path"]).unlink()

    for job, words in [(pending, "pending"), (other_type, "noop"), (gone, "no longer")]:
        response = api.get(f"/jobs/{job.id}/export", HTTP_ACCEPT="text/csv")
        assert response.status_code == 404, (job.type, response.content)
        assert response["Content-Type"] == "application/json"
        assert words in response.json()["detail"]


@pytest.mark.django_db
def test_a_result_naming_another_owners_file_is_not_served(
    api: APIClient, job_factory: Any, export_dir: Path, other_user: Any
) -> None:
    theirs = exported(job_factory, owner=other_user, format="csv", rows=ROWS)
    mine = job_factory(type="data_export", payload={"format": "csv", "rows": ROWS})
    forged = dict(theirs.result)  # names the other owner's file
    mine = move_to(mine, JobStatus.COMPLETED, result=forged)

    assert api.get(f"/jobs/{mine.id}/export").status_code == 404


@pytest.mark.django_db
def test_a_result_from_before_storage_name_is_still_served(
    api: APIClient, job_factory: Any, export_dir: Path
) -> None:
    job = exported(job_factory, format="csv", rows=ROWS, filename="old")
    old_shape = {k: v for k, v in job.result.items() if k != "storage_name"}
    Job.objects.filter(id=job.id).update(result=old_shape)

    response = api.get(f"/jobs/{job.id}/export")

    assert response.status_code == 200
    assert body(response) == Path(job.result["path"]).read_bytes()


@pytest.mark.django_db
def test_the_handler_and_the_download_go_through_the_configured_storage(
    api: APIClient, job_factory: Any, settings: Any, export_dir: Path
) -> None:
    """Another backend configured as STORAGES["exports"]: nothing touches the filesystem."""
    settings.STORAGES = {
        **settings.STORAGES,
        "exports": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    job = exported(job_factory, format="json", rows=ROWS, filename="mem")

    assert job.result["storage_name"] == f"{job.owner_id}/mem.json"
    assert job.result["path"] == job.result["storage_name"]  # no local path to report
    assert storages["exports"].exists(job.result["storage_name"])
    assert not export_dir.exists()
    response = api.get(f"/jobs/{job.id}/export")
    assert response.status_code == 200
    assert json.loads(body(response)) == ROWS


@pytest.mark.django_db
def test_the_schema_documents_the_download(anon_api: APIClient) -> None:
    schema = anon_api.get("/api/schema/?format=json").json()
    download = schema["paths"]["/jobs/{job_id}/export"]["get"]
    assert set(download["responses"]["200"]["content"]) == {"text/csv", "application/json"}
    assert "404" in download["responses"]


# --- end to end: a real worker writes the file, the API serves it -----------------------------


@pytest.mark.e2e
def test_a_real_worker_exports_and_the_owner_downloads_the_same_bytes(
    platform: Any, settings: Any, tmp_path: Path, api: APIClient, other_api: APIClient
) -> None:
    settings.DRACONIC_EXPORT_DIR = tmp_path / "exports"  # the worker inherits it
    platform.start_worker()
    platform.start_scheduler()
    submitted = api.post(
        "/jobs/",
        {"type": "data_export", "payload": {"format": "csv", "rows": ROWS, "filename": "e2e"}},
        format="json",
    )
    assert submitted.status_code == 201, submitted.content
    job_id = submitted.json()["id"]

    job = wait_until(
        lambda: Job.objects.filter(
            id=job_id, status__in=[JobStatus.COMPLETED, JobStatus.FAILED]
        ).first(),
        timeout=120,
        message=f"export {job_id} to finish\n{platform.logs()}",
    )
    assert job.status == JobStatus.COMPLETED, f"{job.error}\n{platform.logs()}"

    response = api.get(f"/jobs/{job_id}/export")
    assert response.status_code == 200
    content = body(response)
    written = tmp_path / "exports" / str(job.owner_id) / "e2e.csv"
    assert Path(job.result["path"]) == written.resolve()
    assert content == written.read_bytes()
    assert hashlib.sha256(content).hexdigest() == job.result["sha256"]
    assert response["Content-Disposition"] == 'attachment; filename="e2e.csv"'
    assert other_api.get(f"/jobs/{job_id}/export").status_code == 404
