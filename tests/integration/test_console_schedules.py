"""The schedules and limits page, and its actions (pause, resume, trigger now) through the
confirmation form: who may do what, CSRF, the audit record, and a constant query count."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from admin_api.models import OperatorAction
from jobs.models import ExecutionLog, Job, Limit
from jobs.schedules import services
from jobs.schedules.models import Schedule

URL = "/dashboard/schedules/"


def _client(user: Any, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def _schedule(owner: Any, name: str = "nightly") -> Schedule:
    data = {"name": name, "interval_seconds": 3600, "job": {"type": "noop"}}
    return services.schedule_create(owner=owner, data=data)


def _action(s: Schedule, action: str) -> str:
    return f"/dashboard/schedules/{s.id}/{action}/"


def test_the_page_lists_schedules_with_next_fire_and_limits_with_their_use(staff_user, user):
    s = _schedule(user)
    Limit.objects.create(key="type:noop", max_concurrency=3)
    body = _client(staff_user).get(URL).content.decode()
    assert f'data-schedule-id="{s.id}"' in body
    assert s.next_fire_at.strftime("%Y-%m-%d %H:%M:%S") in body
    assert 'data-limit-key="type:noop"' in body
    assert "Pause…" in body and "Trigger now…" in body


def test_the_owner_pauses_resumes_and_triggers_through_the_confirmation(user):
    s = _schedule(user)
    client = _client(user)
    confirm = client.get(_action(s, "pause"))
    assert confirm.status_code == 200 and b"1 schedule" in confirm.content
    done = client.post(_action(s, "pause"), follow=True)
    assert b"Paused schedule nightly" in done.content
    s.refresh_from_db()
    assert s.paused and s.next_fire_at is None
    client.post(_action(s, "resume"))
    s.refresh_from_db()
    assert not s.paused and s.next_fire_at is not None
    done = client.post(_action(s, "trigger"), follow=True)
    job = Job.objects.get(schedule=s)
    assert f"submitted job {job.id}".encode() in done.content
    actions = list(OperatorAction.objects.order_by("id").values_list("action", "count"))
    assert actions == [("schedule.pause", 1), ("schedule.resume", 1), ("schedule.trigger", 1)]
    assert ExecutionLog.objects.filter(job=job, context__action="schedule.trigger").exists()


def test_an_operator_acts_on_anyones_schedule(staff_user, user):
    s = _schedule(user)
    assert _client(staff_user).post(_action(s, "pause")).status_code == 302
    s.refresh_from_db()
    assert s.paused
    assert OperatorAction.objects.get().actor == staff_user


def test_an_ordinary_user_neither_sees_nor_touches_anothers_schedule(user, other_user):
    s = _schedule(other_user)
    client = _client(user)
    assert str(s.id) not in client.get(URL).content.decode()
    for action in ("pause", "resume", "trigger"):
        assert client.get(_action(s, action)).status_code == 404
        assert client.post(_action(s, action)).status_code == 404
    s.refresh_from_db()
    assert not s.paused and not Job.objects.exists() and not OperatorAction.objects.exists()


def test_a_viewer_sees_every_schedule_and_limit_and_every_action_is_refused(viewer_user, user):
    s = _schedule(user)
    Limit.objects.create(key="type:noop", max_concurrency=3)
    client = _client(viewer_user)
    body = client.get(URL).content.decode()
    assert f'data-schedule-id="{s.id}"' in body and 'data-limit-key="type:noop"' in body
    assert "Pause…" not in body and "view only" in body
    for action in ("pause", "resume", "trigger"):
        assert client.get(_action(s, action)).status_code == 403
        assert client.post(_action(s, action)).status_code == 403
    s.refresh_from_db()
    assert not s.paused and not Job.objects.exists() and not OperatorAction.objects.exists()


def test_a_post_without_the_csrf_token_is_refused(user):
    s = _schedule(user)
    client = _client(user, csrf=True)
    assert client.post(_action(s, "pause")).status_code == 403
    s.refresh_from_db()
    assert not s.paused
    # With the token from the confirmation form it goes through.
    page = client.get(_action(s, "pause"))
    token = page.context["csrf_token"]
    assert client.post(_action(s, "pause"), {"csrfmiddlewaretoken": token}).status_code == 302


def test_an_unknown_action_is_a_404(staff_user, user):
    assert _client(staff_user).post(_action(_schedule(user), "delete")).status_code == 404


@pytest.mark.parametrize("count", [1, 40])
def test_the_page_costs_the_same_queries_whatever_the_number_of_schedules(
    staff_user, user, count, django_assert_num_queries
):
    for i in range(count):
        _schedule(user, f"s{i}")
        Limit.objects.create(key=f"type:t{i}", max_concurrency=2)
    for schedule in Schedule.objects.all():
        services.schedule_trigger(schedule=schedule)
    client = _client(staff_user)
    client.get(URL)
    # session, user, its permissions (user's, groups': is it read-only staff?), schedules
    # (with their last fire), their jobs' statuses, limits
    with django_assert_num_queries(7):
        assert client.get(URL).status_code == 200
