"""The dashboard: login, scoping (staff see all, others their own), the dependency graph, and
an end-to-end run in headless Chromium (daphne + a real worker and scheduler) where a job's
row turns ``completed`` through the WebSocket without a reload."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from jobs.models import ExecutionLog, JobStatus
from tests.conftest import ROOT, process_env, wait_until
from tests.factories import move_to

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


@pytest.fixture
def web(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff_web(staff_user: Any) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.fixture
def diamond(job_factory: Any) -> dict[str, Any]:
    """a <- b, a <- c, (b, c) <- d: d runs after b and c, which run after a."""
    a = job_factory(type="noop")
    b = job_factory(type="noop", depends_on=[a])
    c = job_factory(type="noop", depends_on=[a])
    d = job_factory(type="noop", depends_on=[b, c])
    return {"a": a, "b": b, "c": c, "d": d}


@pytest.mark.django_db
def test_an_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/dashboard/"
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert b'name="username"' in page.content and b'name="password"' in page.content


@pytest.mark.django_db
def test_logging_in_through_the_form_leads_to_the_dashboard(client, user):
    response = client.post(
        "/accounts/login/",
        {"username": "alice", "password": "alice-password", "next": "/dashboard/"},
    )
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert client.get("/dashboard/").status_code == 200


@pytest.mark.django_db
def test_a_user_sees_only_their_own_jobs_and_staff_see_all(web, staff_web, job_factory, other_user):
    mine = job_factory(type="noop")
    theirs = job_factory(owner=other_user, type="noop")
    page = web.get("/dashboard/").content.decode()
    assert f'data-job-id="{mine.id}"' in page and f'data-job-id="{theirs.id}"' not in page
    assert 'data-ws-scope=""' in page
    staff_page = staff_web.get("/dashboard/").content.decode()
    assert f'data-job-id="{mine.id}"' in staff_page and f'data-job-id="{theirs.id}"' in staff_page
    assert 'data-ws-scope="all"' in staff_page
    assert web.get(f"/dashboard/jobs/{theirs.id}/").status_code == 404
    assert web.get(f"/dashboard/jobs/{theirs.id}/graph.json").status_code == 404
    assert staff_web.get(f"/dashboard/jobs/{theirs.id}/").status_code == 200


@pytest.mark.django_db
def test_the_dashboard_shows_counts_queues_and_resources(web, job_factory):
    job_factory(type="noop")
    job_factory(type="noop")
    page = web.get("/dashboard/").content.decode()
    assert '<span class="value" data-count="pending">2</span>' in page
    for queue in ("critical", "high", "normal", "low"):
        assert f'data-queue="{queue}">0<' in page
    assert 'id="cpu-text">0 / 8<' in page and 'id="mem-text">0 / 4096<' in page
    stats = web.get("/dashboard/stats.json").json()
    assert stats["jobs_by_status"]["pending"] == 2
    assert stats["queue_depth"] == {"critical": 0, "high": 0, "normal": 0, "low": 0}
    assert stats["resources"]["cpu_units"] == {"used": 0, "capacity": 8}
    assert stats["workers_alive"] == 0


@pytest.mark.django_db
def test_the_graph_of_a_diamond_has_four_nodes_and_four_edges_in_three_layers(web, diamond):
    ids = {name: str(job.id) for name, job in diamond.items()}
    for focus in ("a", "d"):
        graph = web.get(f"/dashboard/jobs/{ids[focus]}/graph.json").json()
        layers = {n["id"]: n["layer"] for n in graph["nodes"]}
        assert layers == {ids["a"]: 0, ids["b"]: 1, ids["c"]: 1, ids["d"]: 2}
        edges = sorted((e["source"], e["target"]) for e in graph["edges"])
        expected = [
            (ids["a"], ids["b"]),
            (ids["a"], ids["c"]),
            (ids["b"], ids["d"]),
            (ids["c"], ids["d"]),
        ]
        assert edges == sorted(expected)
        assert [n["id"] for n in graph["nodes"] if n["focus"]] == [ids[focus]]
        assert {n["status"] for n in graph["nodes"]} == {JobStatus.PENDING}


@pytest.mark.django_db
def test_each_node_carries_the_cursor_of_its_last_state_change_and_the_page_the_last_log_id(
    web, diamond
):
    """What lets the page tell a newer event from the state it drew (see dashboard.js)."""
    a = diamond["a"]
    move_to(a, JobStatus.QUEUED)
    ExecutionLog.objects.create(job=a, attempt=0, message="a note, not a state change")
    changes = ExecutionLog.objects.exclude(to_status="")
    last = {str(j.id): changes.filter(job=j).latest("id").id for j in diamond.values()}
    graph = web.get(f"/dashboard/jobs/{diamond['d'].id}/graph.json").json()
    assert {n["id"]: n["cursor"] for n in graph["nodes"]} == last
    page = web.get(f"/dashboard/jobs/{diamond['d'].id}/").content.decode()
    for job_id, cursor in last.items():
        assert f'data-job-id="{job_id}" data-cursor="{cursor}"' in page
    index = web.get("/dashboard/").content.decode()
    assert f'data-since="{ExecutionLog.objects.latest("id").id}"' in index


@pytest.mark.django_db
def test_the_graph_of_a_middle_job_holds_only_its_ancestors_and_descendants(web, diamond):
    ids = {name: str(job.id) for name, job in diamond.items()}
    graph = web.get(f"/dashboard/jobs/{ids['b']}/graph.json").json()
    assert {n["id"] for n in graph["nodes"]} == {ids["a"], ids["b"], ids["d"]}
    assert sorted((e["source"], e["target"]) for e in graph["edges"]) == sorted(
        [(ids["a"], ids["b"]), (ids["b"], ids["d"])]
    )


@pytest.mark.django_db
def test_the_job_page_draws_the_graph_as_inline_svg_with_its_logs(web, diamond):
    page = web.get(f"/dashboard/jobs/{diamond['d'].id}/").content.decode()
    assert page.count('class="node status-pending') == 4
    assert page.count('<line class="edge"') == 4
    assert "new -&gt; pending" in page or "pending" in page
    assert 'src="/dashboard/assets/dashboard.js"' in page


@pytest.mark.django_db
def test_the_dashboard_serves_its_own_assets_and_nothing_else(client):
    js = client.get("/dashboard/assets/dashboard.js")
    assert js.status_code == 200 and js["Content-Type"] == "text/javascript"
    assert b"/jobs/stream" in b"".join(js.streaming_content)
    assert client.get("/dashboard/assets/dashboard.css").status_code == 200
    assert client.get("/dashboard/assets/settings.py").status_code == 404
    assert client.get("/dashboard/assets/..%2F..%2Fdraconic%2Fsettings.py").status_code == 404


# --- the browser ---------------------------------------------------------------------------


def _browser_missing() -> str:
    if not Path(CHROMIUM).exists():
        return f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r requirements-dev.txt)"
    return ""


def _free_port() -> int:
    for port in range(18150, 18200):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("no free port in 18150-18199")


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
def daphne(platform: Any, tmp_path: Path) -> Any:
    """The ASGI server (HTTP + WebSocket) on a port of 18150-18199, against the test DB."""
    port = _free_port()
    log = (tmp_path / "daphne.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "draconic.asgi:application",
        ],
        cwd=ROOT,
        env=process_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _serving(base + "/healthz"), timeout=90, interval=0.3, message="daphne")
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


@pytest.mark.e2e
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
        finally:
            browser.close()


@pytest.mark.e2e
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
        finally:
            browser.close()
