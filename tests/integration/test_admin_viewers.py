"""The Django admin under the viewer rule: a read-only staff user (staff, and
``admin_api.view_everything``) looks and changes nothing, even when also given every model
permission. Before the fix the schedule actions had no permission at all and cancel and
re-drive asked only for ``jobs.change_job``, so such a user could pause, fire, cancel and
re-drive from the changelists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client, RequestFactory

from jobs.engine.deadletter import job_dead_letter_waiting
from jobs.models import DeadLetter, DeadLetterReason, Job, Schedule
from jobs.schedules import services

pytestmark = pytest.mark.django_db

EVERY_MINUTE = {"name": "tick", "interval_seconds": 60, "job": {"type": "noop"}}


@pytest.fixture
def all_powerful_viewer(staff_viewer_user: Any, django_user_model: Any) -> Any:
    """A read-only staff user who was also given every model permission there is."""
    staff_viewer_user.user_permissions.add(*Permission.objects.all())
    return django_user_model.objects.get(pk=staff_viewer_user.pk)


@pytest.fixture
def root(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("root")


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "model_admin", list(admin.site._registry.values()), ids=lambda a: type(a).__name__
)
def test_every_admin_refuses_a_viewer_add_change_delete_and_actions(
    model_admin: Any, all_powerful_viewer: Any
) -> None:
    request = RequestFactory().get("/admin/")
    request.user = all_powerful_viewer
    assert model_admin.has_view_permission(request)  # they may still look
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert model_admin.get_actions(request) == {}


def _pause(schedule: Schedule) -> Callable[[], Any]:
    return lambda: Schedule.objects.get(pk=schedule.pk).paused


def _cases(root: Any, job_factory: Any) -> list[tuple[str, str, list[str], Callable[[], Any]]]:
    """(changelist, action, selected ids, what the action would change) for every action."""
    running = services.schedule_create(owner=root, data=dict(EVERY_MINUTE))
    paused = services.schedule_pause(
        schedule=services.schedule_create(owner=root, data={**EVERY_MINUTE, "name": "held"})
    )
    job = job_factory(type="noop")
    dead = job_factory(type="noop")
    job_dead_letter_waiting(job_id=dead.id, reason=DeadLetterReason.NON_RETRYABLE, error="boom")
    letter = DeadLetter.objects.get(job=dead)
    schedules = "/admin/jobs/schedule/"
    return [
        (schedules, "pause", [str(running.pk)], _pause(running)),
        (schedules, "resume", [str(paused.pk)], _pause(paused)),
        (
            schedules,
            "trigger",
            [str(running.pk)],
            lambda: Job.objects.filter(schedule=running).count(),
        ),
        (
            "/admin/jobs/job/",
            "cancel_selected",
            [str(job.id)],
            lambda: Job.objects.get(id=job.id).status,
        ),
        (
            "/admin/jobs/deadletter/",
            "redrive_selected",
            [str(letter.pk)],
            lambda: DeadLetter.objects.get(pk=letter.pk).requeued_at,
        ),
    ]


@pytest.mark.parametrize(
    "action", ["pause", "resume", "trigger", "cancel_selected", "redrive_selected"]
)
def test_a_viewers_post_of_each_admin_action_changes_nothing(
    action: str, all_powerful_viewer: Any, root: Any, job_factory: Any
) -> None:
    changelist, _, ids, state = next(c for c in _cases(root, job_factory) if c[1] == action)
    viewer = _client(all_powerful_viewer)
    page = viewer.get(changelist)
    assert page.status_code == 200 and f'value="{action}"' not in page.content.decode()
    before = state()
    viewer.post(changelist, {"action": action, "_selected_action": ids, "index": 0})
    assert state() == before
    # The same POST from an operator does act: the request above was a real one.
    _client(root).post(changelist, {"action": action, "_selected_action": ids, "index": 0})
    assert state() != before


def test_a_viewer_cannot_save_a_change_form(all_powerful_viewer: Any, root: Any) -> None:
    schedule = services.schedule_create(owner=root, data=dict(EVERY_MINUTE))
    url = f"/admin/jobs/schedule/{schedule.pk}/change/"
    viewer = _client(all_powerful_viewer)
    assert viewer.get(url).status_code == 200
    assert viewer.post(url, {"name": "renamed"}).status_code == 403
    assert (
        viewer.post(f"/admin/jobs/schedule/{schedule.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert viewer.post("/admin/jobs/limit/add/", {"key": "type:noop"}).status_code == 403
    assert Schedule.objects.get(pk=schedule.pk).name == "tick"
