"""``waiting_on`` on ``GET /jobs/{id}``: one case per reason a job waits (its parents, its
run_at, its retry backoff, a limit rule, the cluster's capacity), nothing for a job that fits, null for a
job that is not waiting, and none of it in the lists."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import jsonschema
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from jobs.engine import admission, transitions
from jobs.models import JobStatus, Limit
from tests.factories import move_to

pytestmark = pytest.mark.django_db


def waiting_on(api: APIClient, job: Any) -> Any:
    """The job's ``waiting_on``, each reason checked against the OpenAPI schema's shape."""
    response = api.get(f"/jobs/{job.id}")
    assert response.status_code == 200, response.content
    reasons = response.json()["waiting_on"]
    for reason in reasons or []:
        assert_documented(api, reason)
    return reasons


def assert_documented(api: APIClient, reason: dict[str, Any]) -> None:
    """``reason`` matches exactly one of the shapes ``WaitingReason`` documents, with no field
    the schema does not name."""
    components = json.loads(api.get("/api/schema/?format=json").content)["components"]
    closed = {
        name: {**spec, "additionalProperties": False} if "properties" in spec else spec
        for name, spec in components["schemas"].items()
    }
    jsonschema.validate(
        reason,
        {"$ref": "#/components/schemas/WaitingReason", "components": {"schemas": closed}},
    )


def test_a_job_waits_on_the_parents_that_have_not_completed(
    api: APIClient, job_factory: Any
) -> None:
    done, running, pending = job_factory(), job_factory(), job_factory()
    move_to(done, JobStatus.COMPLETED)
    move_to(running, JobStatus.RUNNING)
    child = job_factory(depends_on=[done, running, pending])
    assert waiting_on(api, child) == [
        {"reason": "parents", "job_ids": sorted([str(running.id), str(pending.id)])}
    ]


def test_a_delayed_job_waits_on_its_run_at(api: APIClient, job_factory: Any) -> None:
    job = job_factory(run_at=timezone.now() + timedelta(hours=1))
    body = api.get(f"/jobs/{job.id}").json()
    assert body["waiting_on"] == [{"reason": "run_at", "at": body["run_at"]}]
    assert_documented(api, body["waiting_on"][0])


def test_a_delayed_child_waits_on_both_its_parent_and_its_time(
    api: APIClient, job_factory: Any
) -> None:
    parent = job_factory()
    child = job_factory(depends_on=[parent], run_at=timezone.now() + timedelta(hours=1))
    assert [r["reason"] for r in waiting_on(api, child)] == ["parents", "run_at"]


def test_a_retrying_job_waits_on_its_backoff(api: APIClient, job_factory: Any) -> None:
    job = move_to(job_factory(), JobStatus.RUNNING)
    assert transitions.retry_attempt(
        job_id=job.id,
        attempt=job.attempt,
        error="boom",
        next_attempt_at=timezone.now() + timedelta(minutes=5),
        message="test set-up",
        context={},
    )
    body = api.get(f"/jobs/{job.id}").json()
    assert body["status"] == "retrying"
    assert body["waiting_on"] == [
        {"reason": "retry_backoff", "at": body["next_attempt_at"], "next_attempt": 2}
    ]
    assert_documented(api, body["waiting_on"][0])


def test_a_ready_job_that_does_not_fit_waits_on_capacity(
    api: APIClient, job_factory: Any, settings: Any
) -> None:
    settings.MAX_CPU_UNITS = 4
    settings.MAX_MEMORY_MB = 1000
    big = job_factory(cpu_units=3, memory_mb=100)
    assert admission.dispatch() == 1  # the ledger now holds 3 of 4 CPU units
    waiting = job_factory(cpu_units=2, memory_mb=200)
    assert waiting_on(api, waiting) == [
        {
            "reason": "capacity",
            "cpu_units_free": 1,
            "memory_mb_free": 900,
            "needs": {"cpu_units": 2, "memory_mb": 200},
        }
    ]
    assert waiting_on(api, big) is None  # queued: not waiting


def test_capacity_is_not_a_reason_while_the_job_waits_for_its_own(
    api: APIClient, job_factory: Any, settings: Any
) -> None:
    settings.MAX_CPU_UNITS = 2
    job_factory(cpu_units=2)
    admission.dispatch()  # the cluster is full
    later = job_factory(run_at=timezone.now() + timedelta(hours=1))
    assert [r["reason"] for r in waiting_on(api, later)] == ["run_at"]


def test_a_job_held_by_a_concurrency_rule_names_the_rule_its_key_and_the_use(
    api: APIClient, job_factory: Any
) -> None:
    Limit.objects.create(key="tenant:*", max_concurrency=1)
    first = job_factory(concurrency_key="tenant:a")
    second = job_factory(concurrency_key="tenant:a")
    other = job_factory(concurrency_key="tenant:b")
    assert admission.dispatch() == 2  # first holds tenant:a's one lease; other has its own
    assert waiting_on(api, first) is None
    assert waiting_on(api, second) == [
        {
            "reason": "limit",
            "rule": "tenant:*",
            "name": "tenant:a",
            "kind": "concurrency",
            "in_use": 1,
            "max_concurrency": 1,
        }
    ]
    assert waiting_on(api, other) is None  # admitted: its own name under the pattern was free


def test_a_job_held_by_a_rate_rule_names_the_rule_and_its_tokens(
    api: APIClient, job_factory: Any
) -> None:
    Limit.objects.create(key="type:noop", rate="1/h")
    job_factory()
    waiting = job_factory()
    assert admission.dispatch() == 1  # the first took the bucket's one token
    (reason,) = waiting_on(api, waiting)
    assert {k: v for k, v in reason.items() if k != "tokens"} == {
        "reason": "limit",
        "rule": "type:noop",
        "name": "type:noop",
        "kind": "rate",
        "rate": "1/h",
    }
    assert 0 <= reason["tokens"] < 1


def test_a_limit_is_not_a_reason_while_the_job_waits_for_its_parents(
    api: APIClient, job_factory: Any
) -> None:
    Limit.objects.create(key="tenant:*", max_concurrency=1)
    job_factory(concurrency_key="tenant:a")
    admission.dispatch()
    parent = job_factory()
    child = job_factory(depends_on=[parent], concurrency_key="tenant:a")
    assert [r["reason"] for r in waiting_on(api, child)] == ["parents"]


def test_a_ready_job_that_fits_waits_on_nothing(api: APIClient, job_factory: Any) -> None:
    assert waiting_on(api, job_factory()) == []


@pytest.mark.parametrize("status", [JobStatus.RUNNING, JobStatus.COMPLETED, JobStatus.CANCELLED])
def test_a_job_that_is_not_waiting_has_null(
    api: APIClient, job_factory: Any, status: JobStatus
) -> None:
    assert waiting_on(api, move_to(job_factory(), status)) is None


def test_the_list_leaves_waiting_on_out(api: APIClient, job_factory: Any) -> None:
    job_factory(run_at=timezone.now() + timedelta(hours=1))
    (listed,) = api.get("/jobs/").json()["results"]
    assert "waiting_on" not in listed and listed["run_at"] is not None


def test_the_schema_documents_each_reason_and_its_fields(api: APIClient) -> None:
    schema = json.loads(api.get("/api/schema/?format=json").content)
    components = schema["components"]["schemas"]
    field = components["JobDetailOutput"]["properties"]["waiting_on"]
    assert field["nullable"] is True
    assert field["items"] == {"$ref": "#/components/schemas/WaitingReason"}
    union = components["WaitingReason"]
    assert union["discriminator"]["propertyName"] == "reason"
    mapping = union["discriminator"]["mapping"]
    assert set(mapping) == {
        "parents",
        "run_at",
        "retry_backoff",
        "paused",
        "no_live_pool",
        "limit",
        "capacity",
    }
    fields = {
        reason: set(components[ref.rsplit("/", 1)[1]]["properties"])
        for reason, ref in mapping.items()
    }
    assert fields["limit"] == {
        "reason", "rule", "name", "kind", "in_use", "max_concurrency", "rate", "tokens"
    }  # fmt: skip
    assert fields["capacity"] == {"reason", "cpu_units_free", "memory_mb_free", "needs"}
    assert fields["parents"] == {"reason", "job_ids"}
    assert fields["retry_backoff"] == {"reason", "at", "next_attempt"}
    assert fields["paused"] == {"reason", "pause", "job_type", "priority", "since"}
    assert fields["no_live_pool"] == {"reason", "type", "pool", "message"}
    # The dead letters' field named "reason" keeps its enum's name beside these.
    assert components["ReasonEnum"]["enum"][0] == "max_attempts"
