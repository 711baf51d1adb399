"""The operator endpoints are as strict as ``POST /jobs/``.

The story: ``POST /admin/dlq/retry/ -d '{"ids": "x"}'`` answered ``{"requeued": 3}``. The
unknown field was dropped, the filter was empty, and an empty filter matched every open dead
letter, so a typo re-drove the whole queue. Now every body refuses fields it does not know,
a bulk re-drive needs a filter or ``"all": true``, ``"dry_run": true`` only counts, and an
invalid choice lists the valid ones.
"""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from jobs.engine.deadletter import job_dead_letter_waiting
from jobs.models import DeadLetter, DeadLetterReason, ExecutionLog, Job, JobStatus

pytestmark = pytest.mark.django_db


def dead(job_factory: Any, *, type: str = "noop", reason: DeadLetterReason) -> Job:
    job = job_factory(type=type)
    assert job_dead_letter_waiting(job_id=job.id, reason=reason, error="boom")
    return job


@pytest.fixture
def dlq(job_factory: Any) -> list[Job]:
    """Three open dead letters: two worker_lost noop jobs and one timed-out fail job."""
    return [
        dead(job_factory, reason=DeadLetterReason.WORKER_LOST),
        dead(job_factory, reason=DeadLetterReason.WORKER_LOST),
        dead(job_factory, type="fail", reason=DeadLetterReason.TIMEOUT),
    ]


def dlq_state() -> tuple[Any, ...]:
    """Everything a re-drive changes: job statuses, open letters, log lines."""
    return (
        sorted(Job.objects.values_list("id", "status", "attempt")),
        sorted(DeadLetter.objects.values_list("id", "requeued_at")),
        ExecutionLog.objects.count(),
    )


# --- the bug -------------------------------------------------------------------------------


def test_a_typo_in_a_bulk_redrive_is_a_400_naming_it_and_redrives_nothing(
    staff_api: APIClient, dlq: list[Job]
) -> None:
    before = dlq_state()

    response = staff_api.post("/admin/dlq/retry/", {"ids": "x"}, format="json")

    assert response.status_code == 400, response.content
    assert "ids" in response.json()
    assert "unknown field" in response.json()["ids"][0]
    assert dlq_state() == before
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.FAILED}


@pytest.mark.parametrize("body", [{}, {"all": False}, {"dry_run": True}])
def test_a_bulk_redrive_without_a_filter_or_all_true_is_refused(
    staff_api: APIClient, dlq: list[Job], body: dict[str, Any]
) -> None:
    before = dlq_state()

    response = staff_api.post("/admin/dlq/retry/", body, format="json")

    assert response.status_code == 400, response.content
    assert "all" in response.json()["non_field_errors"][0]
    assert dlq_state() == before


def test_all_true_redrives_every_open_dead_letter(staff_api: APIClient, dlq: list[Job]) -> None:
    response = staff_api.post("/admin/dlq/retry/", {"all": True}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {"requeued": 3, "revived": 0}
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.PENDING}
    assert not DeadLetter.objects.filter(requeued_at__isnull=True).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"all": "true"}, "all"),  # a JSON boolean, not a string that looks like one
        ({"all": 1}, "all"),
        ({"dry_run": "yes", "all": True}, "dry_run"),
        ({"type": ""}, "type"),  # a blank filter is not a filter in a body
        ({"reason": ""}, "reason"),
        ({"reason": 7}, "reason"),
    ],
)
def test_bulk_redrive_fields_take_exact_json_values(
    staff_api: APIClient, dlq: list[Job], body: dict[str, Any], field: str
) -> None:
    before = dlq_state()

    response = staff_api.post("/admin/dlq/retry/", body, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert dlq_state() == before


def test_all_true_with_a_filter_is_refused_as_ambiguous(
    staff_api: APIClient, dlq: list[Job]
) -> None:
    before = dlq_state()

    response = staff_api.post(
        "/admin/dlq/retry/", {"all": True, "reason": "timeout"}, format="json"
    )

    assert response.status_code == 400, response.content
    assert "all" in response.json()
    assert dlq_state() == before


# --- dry run -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "count"),
    [
        ({"reason": "worker_lost", "dry_run": True}, 2),
        ({"type": "fail", "dry_run": True}, 1),
        ({"type": "noop", "reason": "timeout", "dry_run": True}, 0),
        ({"all": True, "dry_run": True}, 3),
    ],
)
def test_a_dry_run_answers_how_many_would_be_redriven_and_changes_nothing(
    staff_api: APIClient, dlq: list[Job], body: dict[str, Any], count: int
) -> None:
    before = dlq_state()

    response = staff_api.post("/admin/dlq/retry/", body, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {"would_requeue": count}
    assert dlq_state() == before
    # ... and the real run moves exactly that many.
    real = {k: v for k, v in body.items() if k != "dry_run"}
    assert staff_api.post("/admin/dlq/retry/", real, format="json").json() == {
        "requeued": count,
        "revived": 0,
    }


def test_the_schema_documents_all_and_dry_run(anon_api: APIClient) -> None:
    schema = anon_api.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/admin/dlq/retry/"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    request = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"type", "reason", "all", "dry_run", "descendants"} == set(request["properties"])
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    answer = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"requeued", "would_requeue", "revived"} == set(answer["properties"])


# --- every body refuses unknown fields -----------------------------------------------------


@pytest.fixture
def urls(job_factory: Any) -> dict[str, str]:
    job = job_factory()
    letter = dead(job_factory, reason=DeadLetterReason.TIMEOUT)
    return {"job": str(job.id), "dead": str(letter.id)}


BODIES = [
    ("api", "post", "/jobs/", {"type": "noop", "dependsOn": []}, "dependsOn"),
    ("api", "post", "/jobs/batch/", {"jobs": [{"type": "noop"}], "atomic": True}, "atomic"),
    ("api", "patch", "/jobs/{job}/cancel", {"reason": "no longer needed"}, "reason"),
    ("api", "post", "/jobs/{job}/dependencies/", {"depends_on": [], "mode": "x"}, "mode"),
    ("staff_api", "post", "/admin/dlq/{dead}/retry", {"reset_attempts": True}, "reset_attempts"),
    ("staff_api", "post", "/admin/dlq/retry/", {"reason": "timeout", "limit": 1}, "limit"),
]


@pytest.mark.parametrize(("client", "method", "url", "body", "field"), BODIES)
def test_every_body_refuses_an_unknown_field_naming_it_and_changes_nothing(
    request: pytest.FixtureRequest,
    urls: dict[str, str],
    client: str,
    method: str,
    url: str,
    body: dict[str, Any],
    field: str,
) -> None:
    api: APIClient = request.getfixturevalue(client)
    before = dlq_state()

    response = getattr(api, method)(url.format(**urls), body, format="json")

    assert response.status_code == 400, response.content
    assert "unknown field" in response.json()[field][0]
    assert dlq_state() == before


@pytest.mark.parametrize("body", [None, {}])
@pytest.mark.parametrize(
    ("client", "method", "url"),
    [
        ("api", "patch", "/jobs/{job}/cancel"),
        ("staff_api", "post", "/admin/dlq/{dead}/retry"),
    ],
)
def test_an_endpoint_without_a_body_still_takes_none_or_an_empty_object(
    request: pytest.FixtureRequest,
    urls: dict[str, str],
    client: str,
    method: str,
    url: str,
    body: Any,
) -> None:
    api: APIClient = request.getfixturevalue(client)
    if body is None:
        response = getattr(api, method)(url.format(**urls))
    else:
        response = getattr(api, method)(url.format(**urls), body, format="json")
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    ("client", "url", "field"),
    [
        ("api", "/jobs/?staus=failed", "staus"),
        ("staff_api", "/admin/dlq/?reasn=timeout", "reasn"),
    ],
)
def test_a_misspelt_list_filter_is_a_400_instead_of_no_filter(
    request: pytest.FixtureRequest, urls: dict[str, str], client: str, url: str, field: str
) -> None:
    api: APIClient = request.getfixturevalue(client)
    response = api.get(url)
    assert response.status_code == 400, response.content
    assert "unknown field" in response.json()[field][0]


def test_list_filters_still_take_the_pagination_parameters(
    api: APIClient, staff_api: APIClient, dlq: list[Job]
) -> None:
    assert api.get("/jobs/?status=failed&page=1&page_size=2").status_code == 200
    listed = staff_api.get("/admin/dlq/?reason=worker_lost&page=1&page_size=1")
    assert listed.status_code == 200, listed.content
    assert listed.json()["count"] == 2


# --- invalid choices list the valid ones ---------------------------------------------------

PRIORITIES = "critical, high, normal, low"
STATUSES = ", ".join(JobStatus.values)
REASONS = ", ".join(DeadLetterReason.values)


@pytest.mark.parametrize(
    ("client", "method", "url", "body", "path", "message"),
    [
        (
            "api",
            "post",
            "/jobs/",
            {"type": "noop", "priority": "urgent"},
            ("priority",),
            f'"urgent" is not a valid choice; valid: {PRIORITIES}.',
        ),
        (
            "api",
            "post",
            "/jobs/batch/",
            {"jobs": [{"type": "noop", "priority": "urgent"}]},
            ("jobs", "0", "priority"),
            f'"urgent" is not a valid choice; valid: {PRIORITIES}.',
        ),
        (
            "api",
            "get",
            "/jobs/?priority=urgent",
            None,
            ("priority",),
            f'"urgent" is not a valid choice; valid: {PRIORITIES}.',
        ),
        (
            "api",
            "get",
            "/jobs/?status=done",
            None,
            ("status",),
            f'"done" is not a valid choice; valid: {STATUSES}.',
        ),
        (
            "staff_api",
            "get",
            "/admin/dlq/?reason=oops",
            None,
            ("reason",),
            f'"oops" is not a valid choice; valid: {REASONS}.',
        ),
        (
            "staff_api",
            "post",
            "/admin/dlq/retry/",
            {"reason": "oops"},
            ("reason",),
            f'"oops" is not a valid choice; valid: {REASONS}.',
        ),
    ],
)
def test_an_invalid_choice_lists_the_valid_ones(
    request: pytest.FixtureRequest,
    client: str,
    method: str,
    url: str,
    body: Any,
    path: tuple[Any, ...],
    message: str,
) -> None:
    api: APIClient = request.getfixturevalue(client)
    response = getattr(api, method)(url, body, format="json")
    assert response.status_code == 400, response.content
    node = response.json()
    for key in path:
        node = node[key]
    assert node == [message]
