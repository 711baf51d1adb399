"""Redis unreachable: what needs only PostgreSQL keeps working, what needs Redis answers 503
with ``Retry-After``, and nothing answers 500.

The story: while Redis was down in the fault runs, every authenticated request answered 500,
reads that need only PostgreSQL included (16 to 35 per run). The rate limit counts each
request in Redis, and nothing handled its errors, while a PostgreSQL outage already got a
503 with ``Retry-After`` (tests/integration/test_db_down.py). Here a real API process (gunicorn, as in
production) runs on the test database with ``REDIS_URL`` on a port where nothing listens, so
the cache, the ledger, the channel layer and the broker are all gone at once.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.http import HttpResponse
from django.test import RequestFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIRequestFactory

from draconic import throttling
from draconic.middleware import RedisUnavailableMiddleware
from jobs.api.errors import exception_handler
from jobs.models import JobStatus
from jobs.redis_client import get_redis
from tests.factories import move_to
from tests.harness import ROOT, free_port, process_env, wait_until

#: The production HTTP server, as the Dockerfile runs it.
GUNICORN = [sys.executable, "-m", "gunicorn", "draconic.wsgi:application"]


def _dead_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """An HTTP client of one API process; every answer is kept for the never-a-500 check."""

    def __init__(self, base: str, log: Path) -> None:
        self.base = base
        self.log = log
        self.answers: list[tuple[str, str, int]] = []

    def call(
        self, method: str, path: str, body: Any = None, *, token: str | None = None
    ) -> tuple[int, dict[str, str], Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)  # noqa: S310
        if token:
            request.add_header("Authorization", f"Token {token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                status, headers, raw = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            status, headers, raw = exc.code, dict(exc.headers), exc.read()
        self.answers.append((method, path, status))
        try:
            return status, headers, json.loads(raw)
        except ValueError:
            return status, headers, raw.decode(errors="replace")


@pytest.fixture
def redis_down_api(platform: Any, tmp_path: Path) -> Iterator[Server]:
    """gunicorn on draconic.wsgi against the test database, with Redis unreachable."""
    port = free_port()
    log_path = tmp_path / "api.log"
    dead = f"redis://127.0.0.1:{_dead_port()}/0"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*GUNICORN, "--bind", f"127.0.0.1:{port}", "--workers", "1", "--timeout", "120"],
            cwd=ROOT,
            env=process_env(REDIS_URL=dead, CELERY_BROKER_URL=dead),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = Server(f"http://127.0.0.1:{port}", log_path)

        def serving() -> bool:
            try:
                return server.call("GET", "/healthz")[0] == 200
            except OSError:
                return False

        try:
            wait_until(serving, timeout=90, interval=0.3, message="gunicorn")
            yield server
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def _is_503_with_retry_after(status: int, headers: dict[str, str], body: Any) -> bool:
    return status == 503 and bool(headers.get("Retry-After")) and "detail" in body


@pytest.mark.e2e
def test_reads_keep_working_and_nothing_is_a_500_while_redis_is_down(
    redis_down_api, user, staff_user, job_factory
):
    api = redis_down_api
    token = Token.objects.create(user=user).key
    staff = Token.objects.create(user=staff_user).key
    job = job_factory(type="noop")
    queued = move_to(job_factory(type="noop"), JobStatus.QUEUED)
    dead = move_to(job_factory(type="fail"), JobStatus.FAILED)
    move_to(job_factory(owner=staff_user, type="fail"), JobStatus.FAILED)

    # Reads that need only PostgreSQL.
    status, _, page = api.call("GET", "/jobs/", token=token)
    assert status == 200, str(page)[:300]
    assert {j["id"] for j in page["results"]} >= {str(job.id), str(queued.id)}
    status, _, one = api.call("GET", f"/jobs/{job.id}", token=token)
    assert (status, one["id"]) == (200, str(job.id))
    status, _, logs = api.call("GET", f"/jobs/{job.id}/logs", token=token)
    assert status == 200 and logs["results"], logs
    assert api.call("GET", "/jobs/?status=pending&page_size=5", token=token)[0] == 200
    assert api.call("GET", "/admin/dlq/", token=staff)[0] == 200
    # Unauthenticated and bad requests get the answers they always get.
    assert api.call("GET", "/jobs/")[0] == 401
    assert api.call("GET", "/jobs/00000000-0000-0000-0000-000000000000", token=token)[0] == 404
    assert api.call("POST", "/jobs/", {"type": "nope"}, token=token)[0] == 400

    # Writes: stored in PostgreSQL (the scheduler's tick requests the dispatch Redis lost), or
    # refused with a 503 to retry; the cancel of a queued job is stored, its lease freed later.
    for path, body in (
        ("/jobs/", {"type": "noop"}),
        ("/jobs/batch/", {"jobs": [{"key": "a", "type": "noop"}]}),
    ):
        status, headers, created = api.call("POST", path, body, token=token)
        assert status == 201 or _is_503_with_retry_after(status, headers, created), created
    for cancelled in (job, queued):
        status, _, body = api.call("PATCH", f"/jobs/{cancelled.id}/cancel", token=token)
        assert (status, body["status"]) == (200, JobStatus.CANCELLED), body
    status, headers, body = api.call("POST", f"/admin/dlq/{dead.id}/retry", token=staff)
    assert status == 200 or _is_503_with_retry_after(status, headers, body), body

    # What reports on Redis says so.
    status, _, health = api.call("GET", "/admin/health", token=staff)
    assert status == 503, health
    assert {"broker", "ledger", "channel_layer"} <= set(health["failing"])
    assert "redis" in health["checks"]["ledger"]["error"].lower()
    status, headers, metrics = api.call("GET", "/admin/metrics", token=staff)
    assert status == 200 or _is_503_with_retry_after(status, headers, metrics), metrics
    assert api.call("GET", "/metrics")[0] in (200, 503)

    errors = [answer for answer in api.answers if answer[2] >= 500 and answer[2] != 503]
    assert errors == [], api.log.read_text(errors="replace")[-6000:]


@pytest.fixture
def unreachable_redis(settings: Any) -> Iterator[None]:
    """This process's Redis client on a port where nothing listens, then restored."""
    settings.REDIS_URL = f"redis://127.0.0.1:{_dead_port()}/0"
    get_redis.cache_clear()
    try:
        yield
    finally:
        get_redis.cache_clear()


@pytest.mark.django_db
def test_the_rate_limit_lets_requests_through_and_warns_once_per_interval_while_redis_is_down(
    unreachable_redis: None,
    user: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(throttling, "_clock", lambda: now[0], raising=False)
    if hasattr(throttling, "_Outage"):
        monkeypatch.setattr(throttling._Outage, "until", 0.0)
    throttle = throttling.UserThrottle()
    request = APIRequestFactory().get("/jobs/")
    request.user = user

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "draconic.throttling"]

    with caplog.at_level(logging.WARNING, logger="draconic.throttling"):
        allowed = [throttle.allow_request(request, None) for _ in range(3)]
        assert allowed == [True, True, True]
        assert len(warnings()) == 1, warnings()
        assert "rate limits are off" in warnings()[0]
        now[0] += throttling.OUTAGE_RETRY_SECONDS  # Redis is tried again, and still down
        assert throttle.allow_request(request, None) is True
        assert len(warnings()) == 2, warnings()


def test_a_redis_error_under_an_api_view_is_a_503_with_retry_after() -> None:
    """What no endpoint above raises today, should one come to need Redis: the same answer
    as a PostgreSQL outage gets, in JSON."""
    response = exception_handler(redis.ConnectionError("Error 111 connecting"), {})
    assert response is not None
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert "Redis is unavailable" in response.data["detail"]


def test_a_redis_error_under_a_plain_view_is_a_503_with_retry_after() -> None:
    assert "draconic.middleware.RedisUnavailableMiddleware" in settings.MIDDLEWARE
    middleware = RedisUnavailableMiddleware(lambda request: HttpResponse())
    request = RequestFactory().get("/admin/jobs/job/")
    response = middleware.process_exception(request, redis.TimeoutError("Timeout reading"))
    assert response is not None
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert middleware.process_exception(request, ValueError("a bug")) is None
