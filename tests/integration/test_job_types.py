"""Job types written as functions, served by the built-in workers: validated at submit from
their schema, given their defaults, retried by their own policy, listed by ``GET /job-types/``
and documented in the OpenAPI schema; remote types through the pools' seam."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from jobs.engine.retry import RetryPolicy
from jobs.models import DeadLetter, Job, JobStatus, Priority
from jobs.types import registry, remote
from tests.factories import move_to
from tests.integration import job_types_example
from workers import liveness
from workers.runner import _execute

pytestmark = pytest.mark.django_db

RESIZE = "tests.images.resize"
GOOD = {"type": RESIZE, "payload": {"url": "https://example.com/a.png", "width": 64}}


@pytest.fixture(autouse=True)
def example_types() -> Iterator[list[str]]:
    names = registry.register_module_types(job_types_example)
    yield names
    for name in names:
        registry.unregister(name)


def payload_errors(response: Any) -> list[str]:
    assert response.status_code == 400, response.content
    return list(response.json()["payload"])


# --- submit: the payload schema -----------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"width": 64}, "payload.url: This field is required."),
        ({"url": "u", "width": 64, "height": 3}, "payload.height: Unknown field."),
        ({"url": "u", "width": "64"}, "payload.width: Must be of type integer."),
        (
            {"url": "u", "width": 64, "keep_ratio": 1},
            "payload.keep_ratio: Must be of type boolean.",
        ),
    ],
)
def test_a_function_types_payload_is_checked_against_its_signature_at_submit(
    api: Any, payload: dict[str, Any], error: str
) -> None:
    response = api.post("/jobs/", {"type": RESIZE, "payload": payload}, format="json")
    assert payload_errors(response) == [error]
    assert not Job.objects.exists()


def test_a_batch_checks_each_jobs_payload_the_same_way(api: Any) -> None:
    bad = {"type": RESIZE, "payload": {"url": "u"}}
    response = api.post("/jobs/batch/", {"jobs": [GOOD, bad]}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["jobs"]["1"]["payload"] == ["payload.width: This field is required."]


def test_a_long_dotted_type_name_is_stored_whole(api: Any) -> None:
    from draconic_sdk import job_type

    name = "acme." + ".".join(["deeply_nested_module"] * 11) + ".task"
    assert 200 < len(name) <= 255
    registry.register_job_type(job_type(name)(lambda: None))
    try:
        response = api.post("/jobs/", {"type": name}, format="json")
        assert response.status_code == 201, response.content
        assert Job.objects.get().type == name
    finally:
        registry.unregister(name)


# --- submit: the type's defaults ----------------------------------------------------------


def test_a_job_gets_its_types_defaults_where_its_body_says_nothing(api: Any) -> None:
    response = api.post("/jobs/", GOOD, format="json")
    assert response.status_code == 201, response.content
    job = Job.objects.get()
    assert (job.priority, job.cpu_units, job.memory_mb) == (Priority.HIGH, 2, 256)
    assert (job.max_attempts, job.timeout_seconds) == (5, 30)


def test_the_bodys_explicit_values_win_over_the_types_defaults(api: Any) -> None:
    body = {
        **GOOD,
        "priority": "low",
        "resource_requirements": {"memory_mb": 64},
        "max_attempts": 1,
        "timeout_seconds": 10,
    }
    assert api.post("/jobs/", body, format="json").status_code == 201
    job = Job.objects.get()
    assert (job.priority, job.cpu_units, job.memory_mb) == (Priority.LOW, 2, 64)
    assert (job.max_attempts, job.timeout_seconds) == (1, 10)


def test_the_plain_batch_path_applies_the_same_defaults(api: Any) -> None:
    response = api.post(
        "/jobs/batch/", {"jobs": [GOOD, {**GOOD, "priority": "critical"}]}, format="json"
    )
    assert response.status_code == 201, response.content
    rows = Job.objects.order_by("priority").values_list(
        "priority", "cpu_units", "memory_mb", "max_attempts", "timeout_seconds"
    )
    assert list(rows) == [(Priority.CRITICAL, 2, 256, 5, 30), (Priority.HIGH, 2, 256, 5, 30)]


def test_a_type_without_defaults_gets_the_servers(api: Any, settings: Any) -> None:
    assert (
        api.post(
            "/jobs/", {"type": "tests.greet", "payload": {"name": "Ada"}}, format="json"
        ).status_code
        == 201
    )
    job = Job.objects.get()
    assert (job.priority, job.cpu_units, job.memory_mb) == (Priority.NORMAL, 1, 128)
    assert job.max_attempts == settings.DRACONIC_DEFAULT_MAX_ATTEMPTS


def test_a_body_is_still_held_to_the_bounds(api: Any, settings: Any) -> None:
    settings.MAX_MEMORY_MB = 200  # below the type's default of 256
    response = api.post("/jobs/", GOOD, format="json")
    assert response.status_code == 400
    assert "memory_mb" in response.json()["resource_requirements"]
    assert api.post("/jobs/", {**GOOD, "max_attempts": 21}, format="json").status_code == 400
    body = {**GOOD, "resource_requirements": {"memory_mb": 100}}
    assert api.post("/jobs/", body, format="json").status_code == 201


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"max_attempts": 21}, "max_attempts is at most 20"),
        ({"timeout_seconds": 86401}, "timeout_seconds is at most 86400"),
        ({"cpu_units": 10**6}, "cpu_units: 1000000 exceeds"),
    ],
)
def test_a_type_whose_defaults_break_the_bounds_is_refused_at_registration(
    options: dict[str, Any], problem: str
) -> None:
    from draconic_sdk import job_type

    with pytest.raises(ValueError, match=problem):
        registry.register_job_type(job_type("tests.too_big", **options)(lambda: None))
    assert registry.handler_class("tests.too_big") is None


# --- run: the type's retry policy ---------------------------------------------------------


def run_once(api: Any, url: str) -> Job:
    response = api.post(
        "/jobs/", {"type": RESIZE, "payload": {"url": url, "width": 8}}, format="json"
    )
    assert response.status_code == 201, response.content
    job = move_to(Job.objects.get(id=response.json()["id"]), JobStatus.RUNNING)
    _execute(job, threading.Event())  # the worker's own code, in this process
    return Job.objects.get(id=job.id)


def test_a_function_type_runs_with_the_job_context_and_its_payload(api: Any) -> None:
    job = run_once(api, "https://example.com/a.png")
    assert job.status == JobStatus.COMPLETED
    assert job.result == {
        "url": "https://example.com/a.png",
        "width": 8,
        "keep_ratio": True,
        "attempt": 1,
    }


def test_an_exception_in_retry_on_is_retried_after_the_types_backoff(api: Any) -> None:
    before = timezone.now()
    job = run_once(api, "flaky")
    after = timezone.now()
    assert job.status == JobStatus.RETRYING
    # The type's base 40 s without jitter, not the settings' 0.2 s.
    assert before + timedelta(seconds=40) <= job.next_attempt_at <= after + timedelta(seconds=40)


@pytest.mark.parametrize(("url", "error"), [("hopeless", "Hopeless"), ("broken", "ValueError")])
def test_give_up_on_or_an_exception_outside_retry_on_dead_letters_at_once(
    api: Any, url: str, error: str
) -> None:
    job = run_once(api, url)
    assert (job.status, job.attempt, job.max_attempts) == (JobStatus.FAILED, 1, 5)
    letter = DeadLetter.objects.get(job=job)
    assert (letter.reason, letter.error.split(":")[0]) == ("non_retryable", error)


def test_a_type_without_a_retry_policy_backs_off_by_the_settings(settings: Any) -> None:
    settings.DRACONIC_RETRY_BASE_SECONDS = 7.0
    settings.DRACONIC_RETRY_MAX_SECONDS = 70.0
    settings.DRACONIC_RETRY_JITTER = 0.0
    handler = registry.handler_class("tests.greet")
    assert handler is not None and handler.retry is None
    assert RetryPolicy.of_type(handler.retry).delay_for(1) == 7.0
    resize = registry.handler_class(RESIZE)
    assert resize is not None
    assert RetryPolicy.of_type(resize.retry).delay_for(3) == 40.0  # capped at 40


# --- GET /job-types/ ----------------------------------------------------------------------


def listed(api: Any) -> dict[str, dict[str, Any]]:
    response = api.get("/job-types/")
    assert response.status_code == 200, response.content
    return {item["name"]: item for item in response.json()}


def test_job_types_lists_every_type_with_its_schema_defaults_retry_and_pool(api: Any) -> None:
    types = listed(api)
    assert {"send_email", "data_export", RESIZE, "tests.greet"} <= set(types)
    resize = types[RESIZE]
    assert resize["payload_schema"] == job_types_example.resize.schema
    assert resize["payload_schema"]["required"] == ["url", "width"]
    assert resize["defaults"] == {
        "priority": "high",
        "cpu_units": 2,
        "memory_mb": 256,
        "max_attempts": 5,
        "timeout_seconds": 30,
    }
    assert resize["retry"]["base_seconds"] == 40
    assert resize["retry"]["give_up_on"] == ["tests.integration.job_types_example.Hopeless"]
    assert resize["description"].startswith("Resizes the image")
    assert (resize["pool"], resize["served"]) == ("built-in", False)
    assert types["send_email"]["payload_schema"] == {"type": "object"}  # a Handler without one
    assert types["tests.greet"]["retry"] is None


def test_a_type_is_served_while_a_live_worker_lists_it(api: Any) -> None:
    liveness.beat_once("w1@host", {"job_types": [RESIZE]}, ttl=60)
    types = listed(api)
    assert types[RESIZE]["served"] is True
    assert types["tests.greet"]["served"] is False


def test_job_types_needs_authentication_and_refuses_unknown_parameters(
    anon_api: Any, api: Any
) -> None:
    assert anon_api.get("/job-types/").status_code == 401
    response = api.get("/job-types/?pool=x")
    assert response.status_code == 400
    assert "pool" in response.json()


# --- the OpenAPI schema -------------------------------------------------------------------


def test_the_openapi_schema_documents_each_types_payload(api: Any) -> None:
    schema = api.get("/api/schema/?format=json").json()
    components = schema["components"]["schemas"]
    resize = components[f"JobTypePayload.{RESIZE}"]
    assert resize["required"] == ["url", "width"]
    assert resize["properties"]["width"] == {"type": "integer"}
    greet = components["JobTypePayload.tests.greet"]
    # OpenAPI 3.0 has no "type": "null": X | None is nullable.
    assert greet["properties"]["times"] == {
        "anyOf": [{"type": "integer"}],
        "nullable": True,
        "default": None,
    }
    assert greet["properties"]["tone"]["enum"] == ["plain", "warm"]
    payload = components["JobInputRequest"]["properties"]["payload"]
    assert payload["x-payload-schemas"][RESIZE] == f"#/components/schemas/JobTypePayload.{RESIZE}"
    assert f"JobTypePayload.{RESIZE}" in payload["description"]


# --- remote types: the seam the pools use ------------------------------------------------


@pytest.fixture
def remote_type() -> Iterator[dict[str, Any]]:
    from draconic_sdk import RetryPolicy as TypeRetry
    from draconic_sdk import job_type

    @job_type("acme.reports.build", memory_mb=512, retry=TypeRetry(base_seconds=3))
    def build(ctx: Any, month: str) -> None: ...

    description = build.describe()
    remote.register_remote(description, "acme")
    yield description
    remote.unregister_remote("acme.reports.build")


def test_a_remote_type_is_validated_from_its_registered_schema(
    api: Any, remote_type: dict[str, Any]
) -> None:
    body = {"type": "acme.reports.build", "payload": {"month": 5}}
    response = api.post("/jobs/", body, format="json")
    assert payload_errors(response) == ["payload.month: Must be of type string."]
    body = {"type": "acme.reports.build", "payload": {"month": "2026-11"}}
    assert api.post("/jobs/", body, format="json").status_code == 201
    assert Job.objects.get().memory_mb == 512


def test_a_remote_type_is_listed_with_its_pool(api: Any, remote_type: dict[str, Any]) -> None:
    item = listed(api)["acme.reports.build"]
    assert (item["pool"], item["served"]) == ("acme", True)
    assert item["payload_schema"] == remote_type["payload_schema"]
    assert item["retry"]["base_seconds"] == 3
    handler = registry.handler_class("acme.reports.build")
    assert handler is not None
    assert RetryPolicy.of_type(handler.retry).base_delay == 3


def test_a_remote_source_is_asked_for_names_that_are_not_local(api: Any) -> None:
    description = {"name": "acme.sourced", "payload_schema": {"type": "object"}}
    asked: list[str | None] = []

    def source(name: str | None) -> Any:
        asked.append(name)
        found = remote.RemoteType(description, pool="nightly", served=False)
        return [found] if name in (None, "acme.sourced") else []

    remote.add_remote_source(source)
    try:
        assert api.post("/jobs/", {"type": "acme.sourced"}, format="json").status_code == 201
        assert api.post("/jobs/", {"type": "acme.unknown"}, format="json").status_code == 400
        item = listed(api)["acme.sourced"]
        assert (item["pool"], item["served"]) == ("nightly", False)
        assert "acme.sourced" in asked and "send_email" not in asked  # local names first
    finally:
        remote._sources.remove(source)


def test_a_remote_description_the_server_cannot_use_is_refused() -> None:
    with pytest.raises(ValueError, match="payload_schema"):
        remote.register_remote({"name": "acme.x", "payload_schema": {"type": "array"}}, "acme")
    with pytest.raises(ValueError, match="max_attempts"):
        remote.register_remote({"name": "acme.x", "defaults": {"max_attempts": 50}}, "acme")
    assert remote.remote_type("acme.x") is None
