"""The dashboard's panels beside the jobs (``admin_api/dashboard_panels.py``): a job page says
why the job waits, as ``waiting_on`` does; the index lists the schedules with their next fire
time and last outcome, and, for staff only, the limit rules with their use in the ledger."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from jobs.engine import admission
from jobs.models import JobStatus, Limit, Schedule
from jobs.schedules import services
from tests.factories import move_to

pytestmark = pytest.mark.django_db


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


def page(client: Client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


def test_the_job_page_says_which_limit_holds_the_job_as_waiting_on_does(
    web: Client, api: APIClient, job_factory: Any
) -> None:
    Limit.objects.create(key="tenant:*", max_concurrency=1)
    job_factory(concurrency_key="tenant:a")
    held = job_factory(concurrency_key="tenant:a")
    admission.dispatch()  # the first holds tenant:a's one lease
    html = page(web, f"/dashboard/jobs/{held.id}/")
    assert '<li data-reason="limit">limit tenant:* on tenant:a: 1 of 1 queued or running' in html
    assert [r["reason"] for r in api.get(f"/jobs/{held.id}").json()["waiting_on"]] == ["limit"]


def test_the_job_page_links_the_parents_a_job_waits_on_and_a_running_job_waits_on_nothing(
    web: Client, job_factory: Any
) -> None:
    parent = job_factory()
    child = job_factory(depends_on=[parent])
    html = page(web, f"/dashboard/jobs/{child.id}/")
    assert '<li data-reason="parents">1 parent job(s) not completed yet:' in html
    assert f'href="/dashboard/jobs/{parent.id}/"><code>{str(parent.id)[:8]}</code>' in html
    ready = page(web, f"/dashboard/jobs/{parent.id}/")
    assert 'data-reason="none"' in ready  # pending, nothing holds it
    move_to(parent, JobStatus.RUNNING)
    assert 'id="waiting-on"' not in page(web, f"/dashboard/jobs/{parent.id}/")


def test_the_index_lists_the_schedules_with_their_next_fire_and_last_outcome(
    web: Client, api: APIClient, other_user: Any
) -> None:
    body = {"name": "hourly-report", "interval_seconds": 3600, "job": {"type": "noop"}}
    assert api.post("/schedules/", body, format="json").status_code == 201
    schedule = Schedule.objects.get(name="hourly-report")
    Schedule.objects.create(
        owner=other_user, name="bobs", interval_seconds=60, job={"type": "noop"}
    )
    html = page(web, "/dashboard/")
    assert f'data-schedule-id="{schedule.id}"' in html and ">bobs<" not in html
    next_fire = timezone.localtime(schedule.next_fire_at).strftime("%Y-%m-%d %H:%M:%S")
    assert f"{next_fire}</time></td>\n          <td>never</td>" in html

    job = services.schedule_trigger(schedule=schedule)
    html = page(web, "/dashboard/")
    assert (
        f'<td class="last-outcome">fired:\n            <a href="/dashboard/jobs/{job.id}/">'
        f'<span class="badge status-pending">pending</span>'
    ) in html


def test_staff_see_the_limits_with_their_use_in_the_ledger_and_others_do_not(
    web: Client, staff_web: Client, job_factory: Any
) -> None:
    Limit.objects.create(key="tenant:*", max_concurrency=2)
    Limit.objects.create(key="type:noop", rate="10/s")
    for key in ("tenant:a", "tenant:a", "tenant:b"):
        job_factory(concurrency_key=key)
    assert admission.dispatch() == 3
    html = page(staff_web, "/dashboard/")
    assert "<td>2 at once</td>" in html and "<td>10/s</td>" in html
    assert '<span data-name="tenant:a">tenant:a: 2</span>, ' in html
    assert '<span data-name="tenant:b">tenant:b: 1</span>' in html
    assert '<span data-name="type:noop">type:noop: 3</span>' in html
    assert 'id="limits"' not in page(web, "/dashboard/")
