"""The dashboard: login, scoping (staff see all, others their own), the dependency graph. Its
live run in headless Chromium is in ``tests/e2e/test_live_updates.py``."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from jobs.models import ExecutionLog, JobStatus
from tests.factories import move_to


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
