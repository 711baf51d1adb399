"""The public API under the viewer rule: an on-call viewer (staff or not) reads what they
may read, and every write of theirs is a 403 saying the account is read-only, on their own
jobs and schedules too. Before the fix a viewer could submit jobs, cancel their own, and
create, fire or pause their own schedules, while the console refused them the same."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from jobs.models import Job, JobStatus, Schedule
from jobs.schedules import services

pytestmark = pytest.mark.django_db

EVERY_MINUTE = {"name": "tick", "interval_seconds": 60, "job": {"type": "noop"}}


def _client(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def _writes(job: Job, parent: Job, schedule: Schedule) -> list[tuple[str, str, Any]]:
    """Every write route of the public API, aimed at the caller's own jobs and schedule."""
    return [
        ("post", "/jobs/", {"type": "noop"}),
        ("post", "/jobs/batch/", {"jobs": [{"type": "noop"}]}),
        ("post", f"/jobs/{job.id}/dependencies/", {"depends_on": [str(parent.id)]}),
        ("patch", f"/jobs/{job.id}/cancel", None),
        ("post", "/schedules/", EVERY_MINUTE),
        ("patch", f"/schedules/{schedule.id}", {"name": "renamed"}),
        ("post", f"/schedules/{schedule.id}/trigger", None),
        ("post", f"/schedules/{schedule.id}/pause", None),
        ("post", f"/schedules/{schedule.id}/resume", None),
        ("delete", f"/schedules/{schedule.id}", None),
    ]


@pytest.mark.parametrize("who", ["viewer", "staff viewer"])
def test_every_write_of_a_viewer_is_a_403_and_changes_nothing(
    who, viewer_user, staff_viewer_user, job_factory
):
    viewer = {"viewer": viewer_user, "staff viewer": staff_viewer_user}[who]
    job, parent = job_factory(owner=viewer, type="noop"), job_factory(owner=viewer, type="noop")
    schedule = services.schedule_create(owner=viewer, data=dict(EVERY_MINUTE))
    client = _client(viewer)
    for method, url, body in _writes(job, parent, schedule):
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == 403, (method, url, response.content)
        assert "read-only" in response.json()["detail"], (method, url)
    assert set(Job.objects.values_list("id", "status")) == {
        (job.id, JobStatus.PENDING),
        (parent.id, JobStatus.PENDING),
    }
    assert Job.objects.get(id=job.id).pending_parents == 0
    stored = Schedule.objects.get()
    assert (stored.name, stored.paused) == ("tick", False)
    assert not Job.objects.filter(schedule=stored).exists()


def test_a_viewer_still_reads_jobs_and_schedules(viewer_user, job_factory):
    job = job_factory(owner=viewer_user, type="noop")
    schedule = services.schedule_create(owner=viewer_user, data=dict(EVERY_MINUTE))
    client = _client(viewer_user)
    for url in (f"/jobs/{job.id}", f"/jobs/{job.id}/logs", "/jobs/", f"/schedules/{schedule.id}"):
        assert client.get(url).status_code == 200, url


def test_the_same_writes_are_open_to_their_owner(user, job_factory):
    """Guard against vacuity: the routes above are real writes for anyone not a viewer."""
    job, parent = job_factory(owner=user, type="noop"), job_factory(owner=user, type="noop")
    schedule = services.schedule_create(owner=user, data=dict(EVERY_MINUTE))
    client = _client(user)
    answers = [
        getattr(client, method)(url, body, format="json").status_code
        for method, url, body in _writes(job, parent, schedule)
    ]
    assert 403 not in answers and all(code < 300 for code in answers), answers
