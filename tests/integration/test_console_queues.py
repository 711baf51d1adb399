"""Pauses (``jobs.models.Pause``): admission passes over a paused type or priority without blocking
what is behind it, a resume admits at once, ``waiting_on`` and the pages say so; the staff REST
endpoint ``/admin/pauses/``; the queues page's depths and latency; the workers' rows; the audit
page. Real PostgreSQL and Redis, admission run in this process."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from admin_api import audit
from admin_api.console import pausing, workers
from admin_api.models import OperatorAction
from jobs.engine import admission, wakeup
from jobs.models import Job, JobStatus, Pause, Priority
from jobs.redis_client import get_redis
from tests.factories import move_to
from workers import liveness

pytestmark = pytest.mark.django_db(transaction=True)


def _client(user: Any, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def _status(job: Job) -> str:
    return Job.objects.get(id=job.id).status


def test_a_paused_type_waits_while_the_jobs_behind_it_are_admitted(
    settings: Any, staff_user: Any, job_factory: Any
) -> None:
    settings.MAX_CPU_UNITS = 4
    pausing.pause_create(actor=staff_user, job_type="fail")
    held = [job_factory(type="fail", priority="critical") for _ in range(6)]  # ahead in order
    others = [job_factory(type="noop", priority="low") for _ in range(3)]
    admission.dispatch()
    assert [_status(j) for j in held] == [JobStatus.PENDING] * 6
    assert [_status(j) for j in others] == [JobStatus.QUEUED] * 3


def test_a_paused_priority_waits_and_its_resume_requests_a_dispatch(
    staff_user: Any, job_factory: Any
) -> None:
    pause = pausing.pause_create(actor=staff_user, priority=Priority.HIGH)
    high, normal = job_factory(priority="high"), job_factory(priority="normal")
    admission.dispatch()
    assert (_status(high), _status(normal)) == (JobStatus.PENDING, JobStatus.QUEUED)
    get_redis().delete(wakeup.dirty_key())
    pausing.pause_delete(actor=staff_user, pause_id=pause.id)
    assert get_redis().exists(wakeup.dirty_key())  # the resume asked for a dispatch
    admission.dispatch()
    assert _status(high) == JobStatus.QUEUED
    assert [a.action for a in OperatorAction.objects.order_by("id")] == [
        "pause_priority",
        "resume_priority",
    ]


def test_waiting_on_names_the_pause_on_the_api_and_the_job_page(
    staff_user: Any, api: Any, job_factory: Any
) -> None:
    pausing.pause_create(actor=staff_user, job_type="noop")
    pausing.pause_create(actor=staff_user, priority=Priority.NORMAL)
    job = job_factory(type="noop", priority="normal")
    admission.dispatch()
    reasons = api.get(f"/jobs/{job.id}").json()["waiting_on"]
    assert [(r["reason"], r["pause"], r.get("job_type"), r.get("priority")) for r in reasons] == [
        ("paused", "type", "noop", None),
        ("paused", "priority", None, "normal"),
    ]
    page = _client(staff_user).get(f"/dashboard/jobs/{job.id}/").content.decode()
    assert "paused: type noop is paused" in page and "paused: priority normal is paused" in page
    index = _client(staff_user).get("/dashboard/").content.decode()
    assert 'id="paused-banner"' in index and "type noop" in index


def test_the_pauses_endpoint_lists_creates_and_deletes_for_staff_only(
    staff_api: Any, api: Any, job_factory: Any
) -> None:
    created = staff_api.post(
        "/admin/pauses/", {"job_type": "noop", "reason": "incident 7"}, format="json"
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["job_type"], body["priority"], body["created_by"]) == ("noop", None, "operator")
    assert staff_api.post("/admin/pauses/", {"priority": "low"}, format="json").status_code == 201
    assert [p["priority"] for p in staff_api.get("/admin/pauses/").json()] == [None, "low"]
    assert staff_api.post("/admin/pauses/", {"job_type": "noop"}, format="json").status_code == 409
    assert api.get("/admin/pauses/").status_code == 403
    assert api.post("/admin/pauses/", {"job_type": "x"}, format="json").status_code == 403
    assert api.delete(f"/admin/pauses/{body['id']}").status_code == 403
    assert staff_api.delete(f"/admin/pauses/{body['id']}").status_code == 204
    assert staff_api.delete(f"/admin/pauses/{body['id']}").status_code == 404
    assert staff_api.delete("/admin/pauses/abc").status_code == 404
    assert list(Pause.objects.values_list("priority", flat=True)) == [Priority.LOW]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"job_type", "priority"}),
        ({"job_type": "noop", "priority": "low"}, {"job_type", "priority"}),
        ({"priority": "urgent"}, {"priority"}),
        ({"job_type": "x" * 256}, {"job_type"}),
        ({"job_type": "noop", "paused": True}, {"paused"}),
    ],
)
def test_a_bad_pause_is_a_400_naming_the_fields(
    staff_api: Any, body: dict[str, Any], fields: set[str]
) -> None:
    response = staff_api.post("/admin/pauses/", body, format="json")
    assert response.status_code == 400
    assert fields <= set(response.json()), response.json()
    assert not Pause.objects.exists()


def _depth(html: str, attr: str, name: str) -> str:
    match = re.search(rf'data-{attr}="{re.escape(name)}">.*?data-ready>(\d+)<', html, re.S)
    assert match, html
    return match.group(1)


def test_the_queues_page_shows_depth_per_priority_and_type_in_constant_queries(
    staff_user: Any, job_factory: Any
) -> None:
    client = _client(staff_user)
    job_factory(type="noop", priority="high")
    client.get("/dashboard/queues/")
    with CaptureQueriesContext(connection) as few:
        html = client.get("/dashboard/queues/").content.decode()
    assert _depth(html, "priority", "high") == "1"
    for n in range(25):
        job = job_factory(type="fail" if n % 2 else "noop", priority="low")
        if n < 4:
            move_to(job, JobStatus.RUNNING)
    pausing.pause_create(actor=staff_user, job_type="fail")
    with CaptureQueriesContext(connection) as many:
        html = client.get("/dashboard/queues/").content.decode()
    assert len(many) == len(few)
    assert _depth(html, "priority", "low") == "21"
    assert _depth(html, "type", "fail") == "10"
    assert 'data-type="fail"' in html and "data-paused" in html


def test_the_pause_form_counts_first_then_pauses_and_who_may(
    user: Any, viewer_user: Any, staff_user: Any, job_factory: Any
) -> None:
    for _ in range(3):
        job_factory(type="fail")
    confirm = _client(staff_user).post("/dashboard/queues/pause/", {"job_type": "fail"})
    assert b"3 waiting job(s)" in confirm.content and not Pause.objects.exists()
    for who in (user, viewer_user):
        refused = _client(who).post(
            "/dashboard/queues/pause/", {"job_type": "fail", "confirm": "3"}
        )
        assert refused.status_code == 403
    assert _client(user).get("/dashboard/queues/").status_code == 403
    assert b"Pause type" not in _client(viewer_user).get("/dashboard/queues/").content
    no_token = _client(staff_user, csrf=True).post(
        "/dashboard/queues/pause/", {"job_type": "fail", "confirm": "3"}
    )
    assert no_token.status_code == 403 and not Pause.objects.exists()
    done = _client(staff_user).post(
        "/dashboard/queues/pause/", {"job_type": "fail", "confirm": "3"}
    )
    assert b"Paused type fail" in done.content
    pause = Pause.objects.get()
    assert (
        _client(viewer_user)
        .post("/dashboard/queues/resume/", {"pause": str(pause.id), "confirm": "3"})
        .status_code
        == 403
    )
    assert _client(staff_user).post("/dashboard/queues/pause/", {"priority": "soon"}).json() == {
        "priority": ["one of critical, high, normal, low"]
    }
    resumed = _client(staff_user).post(
        "/dashboard/queues/resume/", {"pause": str(pause.id), "confirm": "3"}
    )
    assert b"Resumed type fail" in resumed.content and not Pause.objects.exists()


def test_worker_rows_join_the_heartbeat_and_the_running_jobs(
    staff_user: Any, job_factory: Any
) -> None:
    liveness.beat_once("w1@host", {"concurrency": 4, "queues": ["normal"], "pid": 7}, ttl=30)
    liveness.beat_once("gone@host", {"concurrency": 2}, ttl=30)
    liveness.forget("gone@host")  # stopped: not alive, still seen
    job = move_to(job_factory(), JobStatus.RUNNING)
    Job.objects.filter(id=job.id).update(worker="w1@host")
    rows = {r.name: r for r in workers.worker_rows()}
    assert (rows["w1@host"].alive, rows["w1@host"].concurrency) == (True, 4)
    assert [j.id for j in rows["w1@host"].running] == [job.id]
    assert rows["gone@host"].alive is False and rows["gone@host"].last_seen is not None
    page = _client(staff_user).get("/dashboard/queues/").content.decode()
    assert 'data-worker="w1@host" data-alive="true"' in page
    assert 'data-worker="gone@host" data-alive="false"' in page
    # Quiet is only for a worker alive now.
    assert (
        _client(staff_user).post("/dashboard/workers/quiet/", {"worker": "gone@host"}).status_code
        == 400
    )


def test_external_pool_workers_are_listed_with_their_running_jobs_and_no_controls(
    staff_user: Any, job_factory: Any
) -> None:
    import time

    from jobs.models import WorkerPool

    now = time.time()
    WorkerPool.objects.create(
        name="shop",
        workers={"w1": {"concurrency": 3, "last_seen": now}, "old": {"last_seen": now - 3600}},
    )
    job = move_to(job_factory(), JobStatus.RUNNING)
    Job.objects.filter(id=job.id).update(worker="shop/w1")
    rows = {r.name: r for r in workers.worker_rows()}
    assert (rows["shop/w1"].alive, rows["shop/w1"].concurrency) == (True, 3)
    assert rows["shop/w1"].kind == "pool shop" and rows["shop/w1"].external
    assert [j.id for j in rows["shop/w1"].running] == [job.id]
    assert rows["shop/old"].alive is False
    page = _client(staff_user).get("/dashboard/queues/").content.decode()
    row = page[page.index('data-worker="shop/w1"') :].split("</tr>")[0]
    assert 'data-alive="true"' in row and "its own supervisor" in row and "Quiet" not in row


def test_the_audit_page_is_newest_first_filtered_and_keyset_paginated(
    user: Any, viewer_user: Any, staff_user: Any
) -> None:
    for n in range(60):
        audit.record(
            staff_user if n % 2 else viewer_user, "pause_type" if n % 3 else "discard", f"thing {n}"
        )
    client = _client(staff_user)
    client.get("/dashboard/audit/")
    with CaptureQueriesContext(connection) as first:
        page = client.get("/dashboard/audit/").content.decode()
    ids = [int(i) for i in re.findall(r'data-action-id="(\d+)"', page)]
    assert len(ids) == 50 and ids == sorted(ids, reverse=True)
    older = re.search(r'id="audit-older" href="\?([^"]+)"', page).group(1).replace("&amp;", "&")
    with CaptureQueriesContext(connection) as second:
        rest = client.get(f"/dashboard/audit/?{older}").content.decode()
    assert len(second) == len(first)
    assert len(re.findall(r"data-action-id=", rest)) == 10
    filtered = client.get("/dashboard/audit/?actor=operator&action=discard").content.decode()
    expected = OperatorAction.objects.filter(actor_name="operator", action="discard").count()
    assert len(re.findall(r"data-action-id=", filtered)) == expected > 0
    assert client.get("/dashboard/audit/?who=x").json() == {
        "who": ["unknown filter; allowed: actor, action, before"]
    }
    assert client.get("/dashboard/audit/?before=x").status_code == 400
    assert _client(viewer_user).get("/dashboard/audit/").status_code == 200
    assert _client(user).get("/dashboard/audit/").status_code == 403


def test_quiet_and_stop_are_for_operators_only_and_say_when_a_worker_did_not_answer(
    user: Any, viewer_user: Any, staff_user: Any
) -> None:
    liveness.beat_once("ghost@host", {"concurrency": 1, "queues": ["normal"]}, ttl=30)
    body = {"worker": "ghost@host", "confirm": "1"}
    for verb in ("quiet", "stop"):
        for who in (user, viewer_user):
            assert _client(who).post(f"/dashboard/workers/{verb}/", body).status_code == 403
        assert (
            _client(staff_user, csrf=True).post(f"/dashboard/workers/{verb}/", body).status_code
            == 403
        )
        asked = _client(staff_user).post(f"/dashboard/workers/{verb}/", {"worker": "ghost@host"})
        assert f"{verb.capitalize()} 1 worker, ghost@host" in asked.content.decode()
    assert not OperatorAction.objects.exists()
    # No process answers to that name: the broadcast waits its bounded timeout and says so.
    done = _client(staff_user).post("/dashboard/workers/quiet/", body).content.decode()
    assert "sent to ghost@host, which did not answer" in done
    entry = OperatorAction.objects.get()
    assert (entry.action, entry.target, entry.detail) == (
        "quiet",
        "worker ghost@host",
        {"answered": False},
    )
    assert _client(staff_user).post("/dashboard/workers/quiet/", {}).json() == {
        "worker": ["a worker's name"]
    }
