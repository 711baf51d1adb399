"""Live updates of jobs that real scheduler and worker processes run: a WebSocket client
follows them, and in headless Chromium (daphne + a worker and a scheduler) a job's row on the
dashboard turns ``completed`` through the WebSocket without a reload.

The events come from the other processes through channels-redis (the same REDIS_URL), so this
checks the whole path: transition -> after-commit publish -> group -> consumer -> socket.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework.authtoken.models import Token

from draconic.asgi import application
from jobs.models import JobStatus
from tests.harness import ROOT, Supervisor, free_port, wait_until

pytestmark = pytest.mark.e2e

S = JobStatus
TIMEOUT = 90  # a hang guard for a broken platform, not a performance assertion


async def _socket(key: str, query: str = "") -> WebsocketCommunicator:
    comm = WebsocketCommunicator(application, f"/jobs/stream?token={key}{query}")
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert connected
    ack = await comm.receive_json_from(timeout=TIMEOUT)
    assert ack["type"] == "subscribed", ack
    return comm


async def _updates(comm: WebsocketCommunicator, job_id: str, last: str) -> list[dict[str, Any]]:
    """The job's events up to its ``last`` status (other messages are skipped)."""
    events: list[dict[str, Any]] = []
    while not events or events[-1]["status"] != last:
        message = await comm.receive_json_from(timeout=TIMEOUT)
        if message.get("type") == "job_update" and message["job_id"] == job_id:
            events.append(message)
    return events


def _follow(
    api: Any, body: dict[str, Any], last: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Submit ``body`` over REST with a socket open; return the live events up to ``last``,
    then the same job's history replayed by a second socket with ``since=0``."""
    key = Token.objects.get(user=api.user).key

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        comm = await _socket(key)
        response = await database_sync_to_async(api.post)("/jobs/", body, format="json")
        assert response.status_code == 201, response.content
        job_id = response.json()["id"]
        live = await _updates(comm, job_id, last)
        await comm.disconnect()
        again = await _socket(key, f"&job={job_id}&since=0")
        replayed = await _updates(again, job_id, last)
        await again.disconnect()
        return live, replayed

    return async_to_sync(scenario)()


def test_a_client_receives_every_transition_of_a_job_the_worker_runs(platform, api):
    platform.start_worker()
    platform.start_scheduler()
    live, replayed = _follow(api, {"type": "noop"}, S.COMPLETED)
    assert [e["status"] for e in live] == [S.PENDING, S.QUEUED, S.RUNNING, S.COMPLETED], (
        platform.logs()
    )
    assert [e["previous_status"] for e in live] == ["", S.PENDING, S.QUEUED, S.RUNNING]
    assert [e["attempt"] for e in live] == [0, 1, 1, 1]
    cursors = [e["cursor"] for e in live]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
    assert [(e["status"], e["cursor"]) for e in replayed] == [
        (e["status"], e["cursor"]) for e in live
    ]


def test_a_client_follows_a_failing_job_through_its_retry_to_failed(platform, api):
    platform.start_worker()
    platform.start_scheduler()
    live, replayed = _follow(api, {"type": "fail", "max_attempts": 2}, S.FAILED)
    expected = [S.PENDING, S.QUEUED, S.RUNNING, S.RETRYING, S.QUEUED, S.RUNNING, S.FAILED]
    assert [e["status"] for e in live] == expected, platform.logs()
    assert [e["attempt"] for e in live] == [0, 1, 1, 1, 2, 2, 2]
    assert [e["status"] for e in replayed] == expected


CHROMIUM = os.environ.get("DRACONIC_CHROMIUM", "/usr/bin/chromium")


SCREENSHOTS = ROOT / "test-output"


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class OffHost:
    """A page's requests to any host but 127.0.0.1: aborted, and remembered (to assert none)."""

    def __init__(self, page: Any) -> None:
        self.urls: list[str] = []
        page.route("**/*", self._route)

    def _route(self, route: Any) -> None:
        if urllib.parse.urlsplit(route.request.url).hostname != "127.0.0.1":
            self.urls.append(route.request.url)
            route.abort()
        else:
            route.continue_()


def _browser_missing() -> str:
    if not Path(CHROMIUM).exists():
        return f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r requirements-dev.txt)"
    return ""


def _post_json(url: str, body: dict[str, Any], token: str) -> tuple[int, dict[str, Any]]:
    """POST to the live server over HTTP (Django's ORM may not run inside Playwright's loop)."""
    request = urllib.request.Request(  # noqa: S310  (local server)
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return int(response.status), json.loads(response.read())


def _get_json(url: str, token: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310  (local server)
        return json.loads(response.read())


def _serving(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310  (local server)
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def daphne(platform: Supervisor) -> str:
    """The ASGI server (HTTP + WebSocket) on a free port, against the test DB; its base URL."""
    port = free_port()
    argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    platform.start("daphne", [*argv, "draconic.asgi:application"])
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: _serving(base + "/healthz"), timeout=90, interval=0.3, message="daphne")
    return base


@pytest.mark.skipif(bool(_browser_missing()), reason=_browser_missing() or "browser present")
def test_a_job_row_turns_completed_live_and_a_diamond_draws_four_nodes_and_edges(
    platform, daphne, api
):
    from playwright.sync_api import sync_playwright

    token = Token.objects.get(user=api.user).key
    platform.start_worker()
    platform.start_scheduler()
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(90_000)
            off_host = OffHost(page)
            page.goto(daphne + "/dashboard/")
            assert "/accounts/login/" in page.url
            page.fill("#id_username", "alice")
            page.fill("#id_password", "alice-password")
            page.click("#login-submit")
            page.wait_for_url(daphne + "/dashboard/")
            page.wait_for_selector("body[data-ws=open]")
            page.evaluate("window.__notReloaded = true")

            status, job = _post_json(
                daphne + "/jobs/", {"type": "noop", "payload": {"seconds": 0.5}}, token
            )
            assert status == 201, job
            job_id = job["id"]
            page.wait_for_selector(f'tr[data-job-id="{job_id}"] .badge.status-completed')
            assert page.evaluate("window.__notReloaded") is True
            assert (
                page.evaluate("window.draconicDashboard.events") >= 3
            )  # queued, running, completed
            # Queue depths, resources and workers come from the stats poll, not from events.
            page.wait_for_function("document.getElementById('workers-alive').textContent === '1'")
            page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

            status, batch = _post_json(
                daphne + "/jobs/batch/",
                {
                    "jobs": [
                        {"key": "a", "type": "noop"},
                        {"key": "b", "type": "noop", "depends_on": ["a"]},
                        {"key": "c", "type": "noop", "depends_on": ["a"]},
                        {"key": "d", "type": "noop", "depends_on": ["b", "c"]},
                    ]
                },
                token,
            )
            assert status == 201, batch
            sink = batch["keys"]["d"]
            page.goto(f"{daphne}/dashboard/jobs/{sink}/")
            assert page.locator("#graph g.node").count() == 4
            assert page.locator("#graph line.edge").count() == 4
            # The sink completes last; its node turns green in place.
            page.wait_for_selector(f'#graph g.node.status-completed[data-job-id="{sink}"]')
            page.screenshot(path=str(SCREENSHOTS / "dashboard-job-graph.png"), full_page=True)
            assert off_host.urls == []
        finally:
            browser.close()


@pytest.mark.skipif(bool(_browser_missing()), reason=_browser_missing() or "browser present")
def test_changes_made_before_the_socket_subscribes_still_reach_the_page(platform, daphne, api):
    """The window between the server's render and the socket's subscription, held open: the
    pages load without their script, the jobs run to completion, then the script starts.
    The jobs page replays from the cursor it rendered; the job page re-reads its graph."""
    from playwright.sync_api import sync_playwright

    token = Token.objects.get(user=api.user).key
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(90_000)
            off_host = OffHost(page)
            page.goto(daphne + "/accounts/login/")
            page.fill("#id_username", "alice")
            page.fill("#id_password", "alice-password")
            page.click("#login-submit")
            page.wait_for_url(daphne + "/dashboard/")
            page.route("**/dashboard.js", lambda route: route.fulfill(body="", status=200))

            def run_script() -> None:
                page.unroute("**/dashboard.js")
                page.add_script_tag(url=daphne + "/dashboard/assets/dashboard.js")

            def completed(job_id: str) -> bool:
                job = _get_json(f"{daphne}/jobs/{job_id}/", token)
                return bool(job["status"] == JobStatus.COMPLETED)

            # The job page, drawn while nothing runs.
            status, batch = _post_json(
                daphne + "/jobs/batch/",
                {
                    "jobs": [
                        {"key": "a", "type": "noop"},
                        {"key": "b", "type": "noop", "depends_on": ["a"]},
                    ]
                },
                token,
            )
            assert status == 201, batch
            sink = batch["keys"]["b"]
            page.goto(f"{daphne}/dashboard/jobs/{sink}/")
            assert (
                page.locator(f'#graph g.node.status-completed[data-job-id="{sink}"]').count() == 0
            )
            platform.start_worker()
            platform.start_scheduler()
            wait_until(lambda: completed(sink), timeout=90, message="the chain to complete")
            run_script()
            page.wait_for_selector("body[data-ws=open]")
            page.wait_for_selector(f'#graph g.node.status-completed[data-job-id="{sink}"]')
            assert page.locator("#job-status.status-completed").count() == 1

            # The jobs page, rendered before a job is even submitted.
            page.route("**/dashboard.js", lambda route: route.fulfill(body="", status=200))
            page.goto(daphne + "/dashboard/")
            status, job = _post_json(daphne + "/jobs/", {"type": "noop"}, token)
            assert status == 201, job
            wait_until(lambda: completed(job["id"]), timeout=90, message="the job to complete")
            assert page.locator(f'tr[data-job-id="{job["id"]}"]').count() == 0
            run_script()
            page.wait_for_selector(f'tr[data-job-id="{job["id"]}"] .badge.status-completed')
            # Replayed changes do not count twice: the counts come from stats.json after it.
            page.wait_for_function(
                "document.querySelector('[data-count=completed]').textContent === '3'"
            )
            assert off_host.urls == []
        finally:
            browser.close()
