"""Schedules in the Django admin: the form is validated by the API's serializer, a save keeps
``next_fire_at`` right, and the actions pause, resume and fire through the services."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from jobs.models import Job, Schedule
from jobs.schedules import services

pytestmark = pytest.mark.django_db

ADD = "/admin/jobs/schedule/add/"


@pytest.fixture
def root(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("root")


@pytest.fixture
def operator(root: Any) -> Client:
    client = Client()
    client.force_login(root)
    return client


def form(root: Any, **fields: Any) -> dict[str, Any]:
    data = {
        "owner": root.pk,
        "name": "from the admin",
        "cron": "",
        "interval_seconds": "60",
        "timezone": "UTC",
        "job": '{"type": "noop"}',
        "overlap": "allow",
        "catchup": "latest",
        "catchup_limit": "10",
        "fires-TOTAL_FORMS": "0",
        "fires-INITIAL_FORMS": "0",
        **fields,
    }
    return data


def test_the_add_form_refuses_what_the_api_refuses(operator, root):
    response = operator.post(ADD, form(root, cron="61 * * * *", interval_seconds=""))
    assert response.status_code == 200
    assert "not a valid cron expression" in response.content.decode()
    response = operator.post(ADD, form(root, job='{"type": "send_email", "payload": {}}'))
    assert "payload.to: is required" in response.content.decode()
    assert not Schedule.objects.exists()


def test_a_schedule_added_in_the_admin_is_due_and_the_actions_work(operator, root):
    response = operator.post(ADD, form(root))
    assert response.status_code == 302, response.content.decode()[-2000:]
    schedule = Schedule.objects.get()
    assert schedule.next_fire_at is not None and schedule.owner == root
    changelist = "/admin/jobs/schedule/"
    ids = [str(schedule.id)]
    operator.post(changelist, {"action": "pause", "_selected_action": ids})
    assert Schedule.objects.get().paused
    operator.post(changelist, {"action": "resume", "_selected_action": ids})
    assert not Schedule.objects.get().paused and Schedule.objects.get().next_fire_at
    operator.post(changelist, {"action": "trigger", "_selected_action": ids})
    assert Job.objects.filter(schedule=schedule).count() == 1
    services.schedule_trigger(schedule=schedule)
    page = operator.get(f"/admin/jobs/schedule/{schedule.id}/change/").content.decode()
    assert "triggered" in page  # the fires inline
