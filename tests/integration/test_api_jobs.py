"""The jobs API's success paths, 409 answers and query counts, against the real PostgreSQL
(and Redis for the ledger). Validation rules live in ``test_api_validation.py``, who may see
and touch what in ``test_access_control.py``, the operator endpoints in ``test_api_admin.py``."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from jobs.models import ExecutionLog, Job, JobDependency, JobStatus
from tests.factories import dead_letter, move_to, row_counts

pytestmark = pytest.mark.django_db

S = JobStatus
JOB_FIELDS = {
    "id",
    "type",
    "priority",
    "status",
    "payload",
    "resource_requirements",
    "depends_on",
    "max_attempts",
    "attempt",
    "timeout_seconds",
    "idempotency_key",
    "result",
    "error",
    "created_at",
    "queued_at",
    "started_at",
    "completed_at",
    "next_attempt_at",
}


def complete(job: Job) -> None:
    """Drive a job to ``completed`` through the real transitions (pending -> ... -> completed)."""
    move_to(job, S.COMPLETED, result={"ok": True})


def end_in(job: Job, status: JobStatus) -> None:
    if status == S.COMPLETED:
        complete(job)
    elif status == S.FAILED:
        dead_letter(job)
    else:
        move_to(job, status)


# --- POST /jobs/ ------------------------------------------------------------------------


def test_it_creates_a_job_and_answers_201_with_the_whole_job(api: APIClient, user: Any) -> None:
    parent = api.post("/jobs/", {"type": "noop"}, format="json").json()
    body = {
        "type": "noop",
        "priority": "high",
        "payload": {"seconds": 0, "note": "héllo ✓"},
        "resource_requirements": {"cpu_units": 2, "memory_mb": 256},
        "depends_on": [parent["id"]],
        "max_attempts": 5,
        "timeout_seconds": 120,
        "idempotency_key": "order-42",
    }
    response = api.post("/jobs/", body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert set(data) >= JOB_FIELDS
    assert data["type"] == "noop"
    assert data["priority"] == "high"
    assert data["status"] == "pending"
    assert data["payload"] == {"seconds": 0, "note": "héllo ✓"}
    assert data["resource_requirements"] == {"cpu_units": 2, "memory_mb": 256}
    assert data["depends_on"] == [parent["id"]]
    assert (data["max_attempts"], data["attempt"], data["timeout_seconds"]) == (5, 0, 120)
    assert data["idempotency_key"] == "order-42"
    assert (data["result"], data["error"], data["completed_at"]) == (None, "", None)
    job = Job.objects.get(id=data["id"])
    assert (job.owner, job.priority, job.cpu_units, job.memory_mb) == (user, 1, 2, 256)
    assert job.pending_parents == 1
    assert str(job.parent_edges.get().depends_on_id) == parent["id"]
    assert list(job.logs.values_list("to_status", flat=True)) == ["pending"]


def test_a_minimal_job_gets_the_documented_defaults(api: APIClient, settings: Any) -> None:
    response = api.post("/jobs/", {"type": "noop"}, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["priority"] == "normal"
    assert data["payload"] == {}
    assert data["resource_requirements"] == {"cpu_units": 1, "memory_mb": 128}
    assert data["depends_on"] == []
    assert data["max_attempts"] == settings.DRACONIC_DEFAULT_MAX_ATTEMPTS
    assert data["timeout_seconds"] == settings.DRACONIC_DEFAULT_TIMEOUT_SECONDS
    assert data["idempotency_key"] is None


def test_a_job_may_use_the_whole_capacity(api: APIClient) -> None:
    body = {"type": "noop", "resource_requirements": {"cpu_units": 8, "memory_mb": 4096}}
    response = api.post("/jobs/", body, format="json")
    assert response.status_code == 201, response.content


def test_a_completed_parent_is_accepted_and_counts_as_met(api: APIClient, job_factory: Any) -> None:
    parent = job_factory()
    complete(parent)
    response = api.post("/jobs/", {"type": "noop", "depends_on": [str(parent.id)]}, format="json")
    assert response.status_code == 201, response.content
    assert Job.objects.get(id=response.json()["id"]).pending_parents == 0


# --- idempotency ------------------------------------------------------------------------


def test_a_repeated_idempotency_key_returns_the_first_job_with_200(api: APIClient) -> None:
    """The same request again; a different one with the same key is a 409
    (tests/integration/test_idempotency.py)."""
    first = api.post("/jobs/", {"type": "noop", "idempotency_key": "k-1"}, format="json")
    assert first.status_code == 201
    before = row_counts()
    again = api.post(
        "/jobs/", {"type": "noop", "idempotency_key": "k-1", "priority": "normal"}, format="json"
    )
    assert again.status_code == 200, again.content
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["priority"] == "normal"
    assert row_counts() == before


def test_another_user_may_use_the_same_idempotency_key(
    api: APIClient, other_api: APIClient
) -> None:
    mine = api.post("/jobs/", {"type": "noop", "idempotency_key": "shared"}, format="json")
    theirs = other_api.post("/jobs/", {"type": "noop", "idempotency_key": "shared"}, format="json")
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]
    assert Job.objects.filter(idempotency_key="shared").count() == 2


# --- GET /jobs/{id} and GET /jobs/ -------------------------------------------------------


def test_it_gets_one_job(api: APIClient, job_factory: Any) -> None:
    parent = job_factory()
    job = job_factory(type="noop", priority="low", payload={"seconds": 1}, depends_on=[parent])
    for url in (f"/jobs/{job.id}", f"/jobs/{job.id}/"):
        response = api.get(url)
        assert response.status_code == 200, response.content
        data = response.json()
        assert data["id"] == str(job.id)
        assert (data["priority"], data["payload"]) == ("low", {"seconds": 1})
        assert data["depends_on"] == [str(parent.id)]


def test_the_list_is_newest_first_and_paginated(api: APIClient, job_factory: Any) -> None:
    ids = [str(job_factory().id) for _ in range(5)]
    first = api.get("/jobs/?page_size=2")
    assert first.status_code == 200
    data = first.json()
    assert data["count"] == 5
    assert data["previous"] is None
    assert [j["id"] for j in data["results"]] == ids[::-1][:2]
    second = api.get(data["next"])
    assert [j["id"] for j in second.json()["results"]] == ids[::-1][2:4]
    assert second.json()["previous"] is not None
    last = api.get(second.json()["next"]).json()
    assert [j["id"] for j in last["results"]] == ids[:1]
    assert last["next"] is None


@pytest.mark.parametrize("path", ["/jobs/", "/schedules/"])
def test_an_empty_page_number_is_a_400_not_the_first_page(api: APIClient, path: str) -> None:
    """DRF reads ``?page=`` as page 1; the schema says ``page`` is an integer, so it is refused."""
    response = api.get(f"{path}?page=")
    assert response.status_code == 400, response.content
    assert response.json()["page"] == ["must be a positive integer"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=pending", {"a", "b"}),
        ("status=cancelled", {"c"}),
        ("status=completed", set()),
        ("priority=high", {"a"}),
        ("priority=low", {"c"}),
        ("type=fail", {"b"}),
        ("type=noop&priority=normal", set()),
        ("type=noop&status=cancelled", {"c"}),
        ("", {"a", "b", "c"}),
    ],
)
def test_the_list_filters_by_status_priority_and_type(
    api: APIClient, job_factory: Any, query: str, expected: set[str]
) -> None:
    jobs = {
        "a": job_factory(type="noop", priority="high"),
        "b": job_factory(type="fail", priority="normal"),
        "c": job_factory(type="noop", priority="low"),
    }
    move_to(jobs["c"], S.CANCELLED)
    names = {str(j.id): name for name, j in jobs.items()}
    response = api.get(f"/jobs/?{query}")
    assert response.status_code == 200, response.content
    assert {names[j["id"]] for j in response.json()["results"]} == expected
    assert response.json()["count"] == len(expected)


@pytest.mark.parametrize("page_size", [1, 50])
def test_the_list_costs_the_same_queries_whatever_the_page_size(
    api: APIClient, job_factory: Any, django_assert_num_queries: Any, page_size: int
) -> None:
    previous: list[Job] = []
    for i in range(60):
        previous.append(job_factory(depends_on=previous[-2:] if i % 3 else []))
    # token auth, COUNT, the page of jobs, their edges (one prefetch for the whole page)
    with django_assert_num_queries(4):
        response = api.get(f"/jobs/?page_size={page_size}")
    assert response.status_code == 200
    assert len(response.json()["results"]) == page_size
    assert any(j["depends_on"] for j in response.json()["results"]) or page_size == 1


# --- PATCH /jobs/{id}/cancel -------------------------------------------------------------


def test_cancel_cancels_a_pending_job_and_its_pending_descendants(
    api: APIClient, job_factory: Any
) -> None:
    root = job_factory()
    child = job_factory(depends_on=[root])
    grandchild = job_factory(depends_on=[child])
    unrelated = job_factory()
    response = api.patch(f"/jobs/{root.id}/cancel")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    statuses = dict(Job.objects.values_list("id", "status"))
    assert statuses[root.id] == statuses[child.id] == statuses[grandchild.id] == S.CANCELLED
    assert statuses[unrelated.id] == S.PENDING
    assert ExecutionLog.objects.filter(job=child, to_status=S.CANCELLED).count() == 1


def test_cancel_accepts_a_trailing_slash(api: APIClient, job_factory: Any) -> None:
    job = job_factory()
    assert api.patch(f"/jobs/{job.id}/cancel/").status_code == 200
    job.refresh_from_db()
    assert job.status == S.CANCELLED


@pytest.mark.parametrize("status", [S.COMPLETED, S.FAILED, S.CANCELLED])
def test_cancel_of_a_finished_job_is_409_and_changes_nothing(
    api: APIClient, job_factory: Any, status: JobStatus
) -> None:
    job = job_factory()
    end_in(job, status)
    before = list(ExecutionLog.objects.values_list("id", flat=True))
    response = api.patch(f"/jobs/{job.id}/cancel")
    assert response.status_code == 409, response.content
    assert status in response.json()["detail"]
    job.refresh_from_db()
    assert job.status == status
    assert list(ExecutionLog.objects.values_list("id", flat=True)) == before


# --- GET /jobs/{id}/logs -----------------------------------------------------------------


def test_logs_list_the_history_and_resume_after_a_cursor(api: APIClient, job_factory: Any) -> None:
    job = job_factory()
    complete(job)
    response = api.get(f"/jobs/{job.id}/logs")
    assert response.status_code == 200, response.content
    lines = response.json()["results"]
    assert [line["to_status"] for line in lines] == ["pending", "queued", "running", "completed"]
    assert lines == sorted(lines, key=lambda line: line["id"])
    later = api.get(f"/jobs/{job.id}/logs?since={lines[1]['id']}").json()["results"]
    assert [line["to_status"] for line in later] == ["running", "completed"]
    assert api.get(f"/jobs/{job.id}/logs/?since={lines[-1]['id']}").json()["results"] == []


# --- POST /jobs/batch/ -------------------------------------------------------------------


def test_a_batch_stores_a_dag_named_by_client_keys(api: APIClient, job_factory: Any) -> None:
    existing = job_factory()
    body = {
        "jobs": [
            {"key": "extract", "type": "noop", "depends_on": [str(existing.id)]},
            {"key": "clean", "type": "noop", "depends_on": ["extract"], "priority": "high"},
            {"key": "report", "type": "noop", "depends_on": ["extract", "clean"]},
            {"type": "noop"},
        ]
    }
    response = api.post("/jobs/batch/", body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    keys = data["keys"]
    assert set(keys) == {"extract", "clean", "report"}
    assert [j["id"] for j in data["jobs"][:3]] == [keys["extract"], keys["clean"], keys["report"]]
    assert len(data["jobs"]) == 4
    assert sorted(data["jobs"][2]["depends_on"]) == sorted([keys["extract"], keys["clean"]])
    edges = set(JobDependency.objects.values_list("job_id", "depends_on_id"))
    ids = {k: Job.objects.get(id=v).id for k, v in keys.items()}
    assert edges == {
        (ids["extract"], existing.id),
        (ids["clean"], ids["extract"]),
        (ids["report"], ids["extract"]),
        (ids["report"], ids["clean"]),
    }
    assert Job.objects.filter(batch_id=data["batch_id"]).count() == 4
    assert Job.objects.get(id=ids["report"]).pending_parents == 2


def test_a_batch_without_the_trailing_slash_works_too(api: APIClient) -> None:
    response = api.post("/jobs/batch", {"jobs": [{"type": "noop"}]}, format="json")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("jobs", "named"),
    [
        ([("a", ["b"]), ("b", ["a"])], ["a", "b"]),
        ([("a", ["a"])], ["a"]),
        ([("a", []), ("b", ["a", "d"]), ("c", ["b"]), ("d", ["c"])], ["b", "c", "d"]),
    ],
)
def test_a_batch_with_a_cycle_is_400_naming_its_keys_and_stores_nothing(
    api: APIClient, jobs: list[tuple[str, list[str]]], named: list[str]
) -> None:
    before = row_counts()
    body = {"jobs": [{"key": k, "type": "noop", "depends_on": deps} for k, deps in jobs]}
    response = api.post("/jobs/batch/", body, format="json")
    assert response.status_code == 400, response.content
    message = " ".join(response.json()["jobs"])
    assert "cycle" in message
    for key in named:
        assert key in message
    assert row_counts() == before


# --- POST /jobs/{id}/dependencies/ -------------------------------------------------------


def test_dependencies_can_be_added_to_a_pending_job(api: APIClient, job_factory: Any) -> None:
    job = job_factory()
    parent, done = job_factory(), job_factory()
    complete(done)
    body = {"depends_on": [str(parent.id), str(done.id)]}
    response = api.post(f"/jobs/{job.id}/dependencies/", body, format="json")
    assert response.status_code == 200, response.content
    assert sorted(response.json()["depends_on"]) == sorted(body["depends_on"])
    job.refresh_from_db()
    assert job.pending_parents == 1
    assert set(job.parent_edges.values_list("depends_on_id", flat=True)) == {parent.id, done.id}
    again = api.post(f"/jobs/{job.id}/dependencies", body, format="json")
    assert again.status_code == 200, again.content
    assert JobDependency.objects.filter(job=job).count() == 2


def test_a_dependency_that_would_close_a_cycle_is_400_and_stores_nothing(
    api: APIClient, job_factory: Any
) -> None:
    job = job_factory()
    child = job_factory(depends_on=[job])
    before = row_counts()
    response = api.post(
        f"/jobs/{job.id}/dependencies/", {"depends_on": [str(child.id)]}, format="json"
    )
    assert response.status_code == 400, response.content
    assert "depends_on" in response.json()
    assert row_counts() == before


def test_a_dependency_on_itself_is_400(api: APIClient, job_factory: Any) -> None:
    job = job_factory()
    response = api.post(
        f"/jobs/{job.id}/dependencies/", {"depends_on": [str(job.id)]}, format="json"
    )
    assert response.status_code == 400, response.content
    assert "depends_on" in response.json()


def test_dependencies_cannot_be_added_to_a_finished_job(api: APIClient, job_factory: Any) -> None:
    job, parent = job_factory(), job_factory()
    complete(job)
    before = row_counts()
    response = api.post(
        f"/jobs/{job.id}/dependencies/", {"depends_on": [str(parent.id)]}, format="json"
    )
    assert response.status_code == 409, response.content
    assert row_counts() == before
