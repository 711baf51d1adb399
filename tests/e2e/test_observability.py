"""What the real processes tell an operator: heartbeats, JSON logs, Flower behind its basic auth."""

from __future__ import annotations

import base64
import json
import re
import signal
import sys
import urllib.error
import urllib.request
from typing import Any

import pytest

from jobs.models import Job, JobStatus
from tests.harness import Supervisor, free_port, process_env, wait_until
from workers import liveness


def health(client: Any) -> tuple[int, dict[str, Any]]:
    response = client.get("/admin/health")
    return response.status_code, response.json()


#: Celery's own text format, "[2024-01-01 00:00:00,000: INFO/MainProcess] ...": never expected.
CELERY_TEXT_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,]+: [A-Z]+/")


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.e2e
def test_the_worker_and_the_scheduler_write_json_lines_for_a_job_they_run(platform, api):
    platform.start_worker()
    platform.start_scheduler()
    response = api.post("/jobs/", {"type": "noop"}, format="json")
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    wait_until(
        lambda: Job.objects.filter(id=job_id, status=JobStatus.COMPLETED).exists(),
        message=f"job {job_id} to complete\n{platform.logs()}",
    )

    def transitions(name: str) -> list[tuple[str, str, int]]:
        text = (platform.log_dir / f"{name}.log").read_text(errors="replace")
        assert not [line for line in text.splitlines() if CELERY_TEXT_LINE.match(line)], text
        return [
            (line["process"], line["transition"], line["attempt"])
            for line in _json_lines(text)
            if line.get("job_id") == job_id and "transition" in line
        ]

    # The running->completed line is written right after the commit; wait for the file.
    wait_until(lambda: ("worker", "running->completed", 1) in transitions("worker"), timeout=60)
    assert transitions("worker") == [
        ("worker", "queued->running", 1),
        ("worker", "running->completed", 1),
    ]
    assert transitions("scheduler") == [("scheduler", "pending->queued", 1)]


@pytest.mark.e2e
def test_a_real_worker_beats_and_disappears_when_stopped_or_killed(platform, staff_api):
    # A TTL of twelve beats: w2 stays listed through w1's shutdown even if a loaded machine
    # delays a few of its beats (with 2 s, one beat 1.5 s late dropped it).
    fast = {"DRACONIC_WORKER_HEARTBEAT_SECONDS": "0.5", "DRACONIC_WORKER_HEARTBEAT_TTL": "6"}
    platform.start_worker("w1", **fast)
    platform.start_worker("w2", **fast)
    platform.start_scheduler()

    def names() -> list[str]:
        return sorted(b.hostname.split("@")[0] for b in liveness.alive_workers())

    wait_until(lambda: names() == ["w1", "w2"], message=f"two heartbeats\n{platform.logs()}")
    status, body = wait_until(lambda: (lambda r: r if r[0] == 200 else None)(health(staff_api)))
    assert body["checks"]["workers"]["alive"] == 2
    beat = next(b for b in liveness.alive_workers() if b.hostname.startswith("w1@"))
    assert beat.info["queues"] == ["critical", "high", "low", "normal"]
    assert beat.info["concurrency"] == 2

    platform.kill("w1", signal.SIGTERM)  # graceful: forgotten at shutdown
    assert names() == ["w2"]
    platform.kill("w2", signal.SIGKILL)  # killed: gone once its key expires
    wait_until(lambda: names() == [], message="the killed worker's heartbeat to expire")
    status, body = health(staff_api)
    assert status == 503
    assert body["failing"] == ["workers"]
    assert body["checks"]["workers"]["alive"] == 0


def _get(url: str, auth: str | None = None) -> int:
    request = urllib.request.Request(url)  # noqa: S310  (a local test server)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


@pytest.mark.e2e
def test_flower_reads_its_basic_auth_from_the_environment(db, tmp_path):
    port = free_port()
    flower = Supervisor(tmp_path)
    argv = [sys.executable, "-m", "celery", "-A", "draconic", "flower"]
    argv += ["--address=127.0.0.1", f"--port={port}"]
    flower.start("flower", argv, process_env(FLOWER_BASIC_AUTH="ops:flower-pw"))
    try:
        url = f"http://127.0.0.1:{port}/"
        status = wait_until(lambda: _get(url), timeout=90, interval=0.5, message="flower to serve")
        assert status == 401
        assert _get(url, "ops:wrong") == 401
        assert _get(url, "ops:flower-pw") == 200
    finally:
        flower.stop_all()
