"""Hostile clients: huge or deeply nested bodies, injection strings, floods, and a production
configuration that passes ``check --deploy``. Missing credentials and someone else's ids are in
``test_access_control.py``."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from typing import Any

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.db import connection
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from jobs.models import Job
from jobs.redis_client import get_redis
from tests.harness import ROOT

pytestmark = pytest.mark.django_db


def _deep(levels: int, *, kind: str = "list") -> str:
    if kind == "list":
        return "[" * levels + "]" * levels
    return '{"a":' * levels + "1" + "}" * levels


# --- Hostile bodies ------------------------------------------------------------------------


def test_it_refuses_a_body_over_the_limit_with_413(api: APIClient, settings: Any) -> None:
    settings.DRACONIC_MAX_REQUEST_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    body = {"type": "noop", "payload": {"blob": "x" * 5000}}
    response = api.post("/jobs/", body, format="json")
    assert response.status_code == 413
    assert "4096 bytes" in response.json()["detail"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert not Job.objects.exists()


def test_it_refuses_a_batch_over_the_default_two_mebibytes(api: APIClient, settings: Any) -> None:
    assert (
        settings.DRACONIC_MAX_REQUEST_BYTES
        == settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        == 2 * 1024 * 1024
    )
    jobs = [{"type": "noop", "payload": {"blob": "x" * 30_000}} for _ in range(80)]
    response = api.post("/jobs/batch/", {"jobs": jobs}, format="json")
    assert response.status_code == 413
    assert not Job.objects.exists()


def test_it_accepts_a_body_just_under_the_limit(api: APIClient, settings: Any) -> None:
    settings.DRACONIC_MAX_REQUEST_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    response = api.post("/jobs/", {"type": "noop", "payload": {"blob": "x" * 3000}}, format="json")
    assert response.status_code == 201, response.content


def test_it_refuses_a_lying_content_length_without_reading(api: APIClient) -> None:
    response = api.generic(
        "POST", "/jobs/", b"{}", content_type="application/json", CONTENT_LENGTH="9" * 12
    )
    assert response.status_code == 413
    response = api.generic(
        "POST", "/jobs/", b"{}", content_type="application/json", CONTENT_LENGTH="ten"
    )
    assert response.status_code == 400


def _asgi_post(path: str, chunks: list[bytes]) -> tuple[int, bytes]:
    """POST through Django's ASGI handler with a chunked body (no Content-Length)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    events = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if events:
            return events.pop(0)
        await asyncio.Event().wait()  # the client stays connected until the handler is done
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(ASGIHandler()(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_it_refuses_an_oversized_chunked_body_under_asgi(settings: Any) -> None:
    settings.DRACONIC_MAX_REQUEST_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    status, body = _asgi_post("/jobs/", [b"[" + b"1," * 1500, b"1," * 1500 + b"1]"])
    assert status == 413
    assert json.loads(body)["detail"].startswith("The request body is larger than 4096 bytes")


@pytest.mark.parametrize("levels", [500, 10_000])
@pytest.mark.parametrize("kind", ["list", "object"])
@pytest.mark.parametrize("path", ["/jobs/", "/jobs/batch/"])
def test_it_answers_400_to_json_nested_hundreds_or_thousands_of_levels(
    api: APIClient, path: str, kind: str, levels: int
) -> None:
    response = api.generic("POST", path, _deep(levels, kind=kind), content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert not Job.objects.exists()


def test_it_answers_400_to_deep_json_on_the_dependencies_and_dlq_endpoints(
    api: APIClient, staff_api: APIClient, job_factory: Any
) -> None:
    job = job_factory()
    body = '{"depends_on": ' + _deep(10_000) + "}"
    response = api.generic(
        "POST", f"/jobs/{job.id}/dependencies", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content[:300]
    response = staff_api.generic(
        "POST", "/admin/dlq/retry/", _deep(10_000, kind="object"), content_type="application/json"
    )
    assert response.status_code == 400, response.content[:300]


def test_it_names_the_payload_when_only_the_payload_is_too_deep(api: APIClient) -> None:
    body = '{"type": "noop", "payload": ' + _deep(40, kind="object") + "}"
    response = api.generic("POST", "/jobs/", body, content_type="application/json")
    assert response.status_code == 400
    assert "payload" in response.json()


@pytest.mark.parametrize("param", ["since", "page_size"])
@pytest.mark.parametrize("value", ["\u00b2", "-1", "1e3", "9" * 40, " 1"])
def test_it_answers_400_to_numeric_query_parameters_that_are_not_plain_integers(
    api: APIClient, job_factory: Any, param: str, value: str
) -> None:
    job = job_factory()
    response = api.get(f"/jobs/{job.id}/logs", {param: value})
    assert response.status_code == 400, response.content
    assert param in response.json()


@pytest.mark.parametrize(
    "value",
    [
        "'; DROP TABLE jobs_job; --",
        "{{ settings.SECRET_KEY }}",
        "{% debug %}",
        "<script>alert(1)</script>",
    ],
)
def test_injection_strings_are_stored_as_plain_data(api: APIClient, value: str) -> None:
    response = api.post(
        "/jobs/",
        {"type": "noop", "payload": {"note": value}, "idempotency_key": value},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["payload"] == {"note": value}
    assert Job.objects.get().idempotency_key == value
    listed = api.get("/jobs/", {"type": value})
    assert listed.status_code == 200 and listed.json()["results"] == []


def test_every_string_in_a_request_body_is_bounded() -> None:
    """Each string a client can send has a maxLength, an enum or a format; JSON payloads are
    bounded in bytes by the serializer and the request size limit."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    unbounded = []
    for name, component in schema["components"]["schemas"].items():
        if not name.endswith("Request"):
            continue
        for field, spec in component.get("properties", {}).items():
            specs = [spec, spec.get("items", {})]
            for s in specs:
                if s.get("type") == "string" and not ({"maxLength", "enum", "format"} & set(s)):
                    unbounded.append(f"{name}.{field}")
    assert unbounded == []


# --- Rate limits ---------------------------------------------------------------------------


def test_it_throttles_a_user_past_the_rate_with_429(
    api: APIClient, other_api: APIClient, settings: Any
) -> None:
    settings.DRACONIC_THROTTLE_USER = "3/min"
    codes = [api.get("/jobs/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    throttled = api.get("/jobs/")
    assert throttled.status_code == 429
    assert 0 < int(throttled["Retry-After"]) <= 60
    assert "throttled" in throttled.json()["detail"].lower()
    assert other_api.get("/jobs/").status_code == 200  # the budget is per user
    # Counted in Redis, shared by every API process; not in a per-process memory cache.
    assert any(b"throttle_user" in key for key in get_redis().scan_iter("*throttle*"))


def test_it_throttles_anonymous_clients_per_address(anon_api: APIClient, settings: Any) -> None:
    settings.DRACONIC_THROTTLE_ANON = "2/min"
    codes = [anon_api.get("/api/schema/").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    elsewhere = APIClient(REMOTE_ADDR="10.9.8.7")
    assert elsewhere.get("/api/schema/").status_code == 200
    spoofed = APIClient(HTTP_X_FORWARDED_FOR="10.1.1.1")
    assert spoofed.get("/api/schema/").status_code == 429  # the header does not buy a new budget


# --- Headers and deployment ------------------------------------------------------------------


@pytest.mark.parametrize("who", ["api", "anon_api"])
def test_responses_carry_the_security_headers(request: pytest.FixtureRequest, who: str) -> None:
    client: APIClient = request.getfixturevalue(who)
    response = client.get("/jobs/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_production_settings_pass_check_deploy() -> None:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "api.example.com",
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "DJANGO_SETTINGS_MODULE": "draconic.settings",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues (3 silenced)." in output, output


def test_production_refuses_to_start_without_a_secret_key() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update(DEBUG="false", DJANGO_SETTINGS_MODULE="draconic.settings")
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
