"""Flower tells the truth: read through Flower's own API after a completing, a retried and a
failing job run on a real worker, every attempt has the state it had in Draconic (a retried
attempt a RETRY, a failed one a FAILURE) and carries its job type as its name, by which
Flower filters."""

from __future__ import annotations

import base64
import json
import sys
import urllib.request
from typing import Any

import pytest

from jobs.models import Job, JobStatus
from tests.harness import free_port, wait_until

pytestmark = pytest.mark.e2e

AUTH = "flower:flower-test-password"


def flower_get(port: int, path: str) -> Any:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    request.add_header("Authorization", "Basic " + base64.b64encode(AUTH.encode()).decode())
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def start_flower(platform: Any, port: int) -> None:
    argv = [sys.executable, "-m", "celery", "-A", "draconic", "flower", f"--port={port}"]
    platform.start(
        "flower", [*argv, "--address=127.0.0.1"], platform.environment(FLOWER_BASIC_AUTH=AUTH)
    )

    def up() -> bool:
        try:
            flower_get(port, "/api/workers")
        except OSError:
            return False
        return True

    wait_until(up, message=f"Flower to answer\n{platform.logs()}")


def submit(api: Any, **body: Any) -> str:
    response = api.post("/jobs/", body, format="json")
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def test_flower_shows_each_attempt_as_it_went_named_by_its_job_type(
    platform: Any, api: Any
) -> None:
    port = free_port()
    start_flower(platform, port)  # first, so it sees every event
    platform.start_worker()
    platform.start_scheduler()
    done = submit(api, type="noop")
    retried = submit(api, type="fail", payload={"fail_attempts": 1}, max_attempts=2)
    failed = submit(api, type="fail", payload={"permanent": True})
    wait_until(
        lambda: (
            Job.objects.filter(id__in=[done, retried, failed])
            .exclude(status__in=[JobStatus.COMPLETED, JobStatus.FAILED])
            .count()
            == 0
        ),
        message=f"the three jobs to end\n{platform.logs()}",
    )
    expected = {
        f"{done}:1": ("draconic.noop", "SUCCESS"),
        f"{retried}:1": ("draconic.fail", "RETRY"),
        f"{retried}:2": ("draconic.fail", "SUCCESS"),
        f"{failed}:1": ("draconic.fail", "FAILURE"),
    }

    def seen() -> dict[str, tuple[str, str]] | None:
        tasks = flower_get(port, "/api/tasks")
        got = {tid: (t.get("name"), t.get("state")) for tid, t in tasks.items() if tid in expected}
        return got if got == expected else None

    wait_until(seen, message=f"Flower to see every attempt\n{platform.logs()}")
    only_fail = flower_get(port, "/api/tasks?taskname=draconic.fail")
    assert set(only_fail) == {f"{retried}:1", f"{retried}:2", f"{failed}:1"}
