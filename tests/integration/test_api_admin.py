"""The operator endpoints (the dead-letter queue, health, metrics), /healthz, and the OpenAPI
schema and docs, against the real PostgreSQL and Redis. Who may call them is in
``test_access_control.py``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from jobs.models import DeadLetter, JobStatus
from tests.factories import dead_letter

pytestmark = pytest.mark.django_db

S = JobStatus
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


# --- admin: DLQ, health, metrics -------------------------------------------------------


def test_the_dlq_lists_a_dead_lettered_job_and_retry_re_drives_it(
    staff_api: APIClient, job_factory: Any
) -> None:
    job = job_factory(type="fail")
    dead_letter(job, error="it broke")
    listing = staff_api.get("/admin/dlq/")
    assert listing.status_code == 200, listing.content
    assert listing.json()["count"] == 1
    letter = listing.json()["results"][0]
    assert letter["job"]["id"] == str(job.id)
    assert (letter["reason"], letter["error"], letter["job"]["status"]) == (
        "max_attempts",
        "it broke",
        "failed",
    )
    response = staff_api.post(f"/admin/dlq/{job.id}/retry")
    assert response.status_code == 200, response.content
    assert response.json() == {"job_id": str(job.id), "status": "pending", "revived": []}
    job.refresh_from_db()
    assert (job.status, job.error) == (S.PENDING, "")
    assert DeadLetter.objects.get(job=job).requeued_at is not None
    assert staff_api.get("/admin/dlq/").json()["count"] == 0
    assert staff_api.post(f"/admin/dlq/{job.id}/retry").status_code == 404


def test_the_dlq_filters_by_reason_and_type(staff_api: APIClient, job_factory: Any) -> None:
    failing, noop = job_factory(type="fail"), job_factory(type="noop")
    dead_letter(failing)
    dead_letter(noop)
    assert staff_api.get("/admin/dlq/?type=fail").json()["count"] == 1
    assert staff_api.get("/admin/dlq/?reason=max_attempts").json()["count"] == 2
    assert staff_api.get("/admin/dlq/?reason=timeout").json()["count"] == 0


def test_health_names_every_check_and_its_status_code_agrees(staff_api: APIClient) -> None:
    for url in ("/admin/health", "/admin/health/"):
        response = staff_api.get(url)
        assert response.status_code in (200, 503), response.content
        data = response.json()
        assert data["checks"]["postgres"]["ok"] is True
        failing = sorted(name for name, check in data["checks"].items() if not check["ok"])
        assert sorted(data["failing"]) == failing
        assert (response.status_code == 200) == (data["status"] == "ok") == (not failing)


def test_metrics_count_jobs_by_status_and_priority(staff_api: APIClient, job_factory: Any) -> None:
    job_factory(priority="high")
    dead_letter(job_factory())
    response = staff_api.get("/admin/metrics")
    assert response.status_code == 200, response.content
    data = response.json()
    assert {k: v for k, v in data["jobs_by_status"].items() if v} == {"pending": 1, "failed": 1}
    assert {k: v for k, v in data["jobs_by_priority"].items() if v} == {"high": 1, "normal": 1}
    assert {k: v for k, v in data["dead_letters_by_reason"].items() if v} == {"max_attempts": 1}
    assert data["resources"]["cpu_units"]["capacity"] == 8
    assert data["resources"]["memory_mb"]["capacity"] == 4096


def test_healthz_is_open_to_anyone(anon_api: APIClient) -> None:
    response = anon_api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


# --- OpenAPI ---------------------------------------------------------------------------

DOCUMENTED = {
    "/jobs/": {"get", "post"},
    "/jobs/{job_id}": {"get"},
    "/jobs/{job_id}/cancel": {"patch"},
    "/jobs/{job_id}/logs": {"get"},
    "/jobs/{job_id}/export": {"get"},
    "/jobs/batch/": {"post"},
    "/jobs/{job_id}/dependencies/": {"post"},
    "/admin/dlq/": {"get"},
    "/admin/dlq/{job_id}/retry": {"post"},
    "/admin/health": {"get"},
    "/admin/metrics": {"get"},
}


@pytest.mark.django_db  # the schema lists the types worker pools registered
def test_the_openapi_schema_is_valid_and_documents_every_endpoint(anon_api: APIClient) -> None:
    response = anon_api.get("/api/schema/?format=json")
    assert response.status_code == 200, response.content
    schema = json.loads(response.content)
    validate_schema(schema)
    for path, methods in DOCUMENTED.items():
        assert path in schema["paths"], sorted(schema["paths"])
        assert methods <= set(schema["paths"][path]), (path, set(schema["paths"][path]))
    # each endpoint once: the trailing-slash aliases are not documented twice
    assert "/jobs/{job_id}/" not in schema["paths"]
    create = schema["paths"]["/jobs/"]["post"]["responses"]
    assert {"201", "400", "401"} <= set(create)


def test_the_api_docs_page_renders(anon_api: APIClient) -> None:
    response = anon_api.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


# --- DLQ retry 404s (who may see what: test_access_control.py) ---------------------------


@pytest.mark.parametrize("bad_id", [UNKNOWN_ID, "not-a-uuid"])
def test_dlq_retry_of_an_unknown_id_is_404(staff_api: APIClient, bad_id: str) -> None:
    response = staff_api.post(f"/admin/dlq/{bad_id}/retry")
    assert response.status_code == 404, response.content


def test_dlq_retry_of_a_job_not_in_the_dlq_is_404(staff_api: APIClient, job_factory: Any) -> None:
    job = job_factory()
    assert staff_api.post(f"/admin/dlq/{job.id}/retry").status_code == 404
    job.refresh_from_db()
    assert job.status == S.PENDING
