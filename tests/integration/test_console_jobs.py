"""The console's jobs page (``/dashboard/jobs/``): search and filters in the URL, keyset
pagination in a constant number of queries, and the cancel / retry / re-drive actions with
their confirmation, for an operator, an ordinary user, an on-call viewer, and under CSRF.
The browser run is ``tests/e2e/test_console_jobs_browser.py``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from admin_api.console import job_actions, jobs_query
from admin_api.models import OperatorAction
from jobs.models import ExecutionLog, Job, JobStatus
from tests.factories import move_to

pytestmark = pytest.mark.django_db
S = JobStatus
URL = "/dashboard/jobs/"
ACTION = "/dashboard/jobs/action/"


def _web(user: Any, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


@pytest.fixture
def web(user: Any) -> Client:
    return _web(user)


@pytest.fixture
def staff_web(staff_user: Any) -> Client:
    return _web(staff_user)


@pytest.fixture
def viewer_web(viewer_user: Any) -> Client:
    return _web(viewer_user)


def _ids(response: Any) -> list[str]:
    return [str(j.id) for j in response.context["page"].jobs]


def test_a_search_by_id_key_batch_and_schedule_finds_the_job(staff_web, job_factory):
    target = job_factory(type="noop", idempotency_key="order-42")
    job_factory(type="noop")
    Job.objects.filter(id=target.id).update(batch_id=target.id)
    for where, q in [("id", target.id), ("idempotency_key", "order-42"), ("batch", target.id)]:
        response = staff_web.get(URL, {"q": str(q), "search_in": where})
        assert response.status_code == 200
        assert _ids(response) == [str(target.id)], where


def test_a_search_by_schedule_name_finds_the_jobs_it_fired(staff_web, job_factory, user):
    from jobs.schedules.models import Schedule

    schedule = Schedule.objects.create(
        owner=user, name="nightly", interval_seconds=60, job={"type": "noop"}
    )
    fired = job_factory(type="noop")
    job_factory(type="noop")
    Job.objects.filter(id=fired.id).update(schedule=schedule)
    for q in ("nightly", str(schedule.id)):
        response = staff_web.get(URL, {"q": q, "search_in": "schedule"})
        assert _ids(response) == [str(fired.id)]


def test_filters_combine_and_are_kept_in_the_page_links(staff_web, job_factory, other_user):
    mine = job_factory(type="noop", priority="high")
    job_factory(type="noop", priority="low")
    job_factory(type="fail", priority="high")
    job_factory(owner=other_user, type="noop", priority="high")
    response = staff_web.get(URL, {"type": "noop", "priority": "high", "owner": "alice"})
    assert _ids(response) == [str(mine.id)]
    html = response.content.decode()
    assert 'name="type" value="noop"' in html  # the view is its URL: shared, it shows the same
    assert 'value="high" selected' in html
    move_to(mine, S.CANCELLED)
    assert _ids(staff_web.get(URL, {"status": "cancelled"})) == [str(mine.id)]


def test_the_created_time_range_bounds_the_jobs(staff_web, job_factory):
    old, new = job_factory(type="noop"), job_factory(type="noop")
    Job.objects.filter(id=old.id).update(created_at=timezone.now() - timedelta(days=2))
    since = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert _ids(staff_web.get(URL, {"created_from": since})) == [str(new.id)]
    assert _ids(staff_web.get(URL, {"created_to": since})) == [str(old.id)]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "bogus"}, "status"),
        ({"priority": "urgent"}, "priority"),
        ({"q": "not-a-uuid", "search_in": "id"}, "q"),
        ({"q": "x", "search_in": "nowhere"}, "search_in"),
        ({"created_from": "yesterday"}, "created_from"),
        ({"after": "garbage"}, "after"),
        ({"after": "2026-01-01T00:00:00+00:00~not-a-uuid"}, "after"),
    ],
)
def test_a_bad_filter_is_a_400_naming_the_field(staff_web, params, field):
    response = staff_web.get(URL, params)
    assert response.status_code == 400
    assert field in response.json()


def test_keyset_pages_walk_every_job_once_forwards_and_back(staff_web, job_factory, monkeypatch):
    monkeypatch.setattr(jobs_query, "PAGE_SIZE", 4)
    stamp = timezone.now()
    jobs = [job_factory(type="noop") for _ in range(10)]
    # Ties on created_at: the id breaks them, so no job is skipped or shown twice.
    Job.objects.filter(id__in=[j.id for j in jobs[:6]]).update(created_at=stamp)
    expected = [str(j.id) for j in Job.objects.order_by("-created_at", "-id")]
    seen, pages, response = [], [], staff_web.get(URL)
    while True:
        pages.append(_ids(response))
        seen += pages[-1]
        cursor = response.context["page"].next_cursor
        if cursor is None:
            break
        response = staff_web.get(URL, {"after": cursor})
    assert seen == expected and len(pages) == 3
    back = staff_web.get(URL, {"before": response.context["page"].prev_cursor})
    assert _ids(back) == pages[1]
    first = staff_web.get(URL, {"before": back.context["page"].prev_cursor})
    assert _ids(first) == pages[0] and first.context["page"].prev_cursor is None


def _page_queries(client: Client, params: dict[str, str]) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(URL, params).status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"status": "pending"},
        {"type": "noop", "owner": "alice"},
        {"q": "k", "search_in": "idempotency_key"},
    ],
)
def test_the_page_costs_the_same_queries_with_few_and_many_jobs(staff_web, job_factory, params):
    job_factory(type="noop", idempotency_key="k")
    few = _page_queries(staff_web, params)
    for _ in range(120):
        job_factory(type="noop")
    assert _page_queries(staff_web, params) == few


def test_an_ordinary_user_sees_only_their_own_jobs(web, job_factory, other_user):
    mine = job_factory(type="noop")
    theirs = job_factory(owner=other_user, type="noop")
    assert _ids(web.get(URL)) == [str(mine.id)]
    assert _ids(web.get(URL, {"q": str(theirs.id), "search_in": "id"})) == []


# --- the actions ---------------------------------------------------------------------------


@pytest.fixture
def mixed(job_factory: Any) -> dict[str, Job]:
    """One job of each status an action treats differently."""
    return {
        "pending": job_factory(type="noop"),
        "running": move_to(job_factory(type="noop"), S.RUNNING),
        "retrying": move_to(job_factory(type="noop"), S.RETRYING),
        "failed": move_to(job_factory(type="noop"), S.FAILED),
        "completed": move_to(job_factory(type="noop"), S.COMPLETED),
        "cancelled": move_to(job_factory(type="noop"), S.CANCELLED),
    }


def _post(client: Client, action: str, jobs: list[Job], **extra: str) -> Any:
    return client.post(ACTION, {"action": action, "ids": [str(j.id) for j in jobs], **extra})


@pytest.mark.parametrize(
    ("action", "applies"),
    [
        ("cancel", {"pending", "running", "retrying"}),
        ("retry", {"retrying", "failed"}),
        ("redrive", {"failed"}),
    ],
)
def test_the_confirmation_says_how_many_jobs_the_action_touches_and_changes_nothing(
    staff_web, mixed, action, applies
):
    before = {k: Job.objects.get(id=j.id).status for k, j in mixed.items()}
    response = _post(staff_web, action, list(mixed.values()))
    assert response.status_code == 200
    plan = response.context["plan"]
    assert plan.selected == 6
    assert {str(i) for i in plan.applicable} == {str(mixed[k].id) for k in applies}
    assert sum(plan.skipped.values()) == 6 - len(applies)
    html = response.content.decode()
    assert f'id="confirm-count">{len(applies)}<' in html
    assert {k: Job.objects.get(id=j.id).status for k, j in mixed.items()} == before
    assert not OperatorAction.objects.exists()


def test_cancel_confirmed_ends_the_waiting_jobs_and_asks_the_running_one_to_stop(
    staff_web, staff_user, mixed
):
    response = _post(staff_web, "cancel", list(mixed.values()), confirm="yes", next=URL)
    assert response.status_code == 302 and response["Location"] == URL
    status = {k: Job.objects.get(id=j.id) for k, j in mixed.items()}
    assert status["pending"].status == S.CANCELLED and status["retrying"].status == S.CANCELLED
    assert status["running"].status == S.RUNNING and status["running"].cancel_requested
    assert status["completed"].status == S.COMPLETED and status["failed"].status == S.FAILED
    entry = OperatorAction.objects.get()
    assert (entry.actor, entry.action, entry.count) == (staff_user, "cancel", 3)
    assert entry.detail["skipped"] == 3
    page = staff_web.get(URL)
    assert "Cancel: 3 of 6 selected job(s) done; 3 skipped." in page.content.decode()


def test_retry_runs_a_retrying_job_now_and_redrives_a_failed_one_alone(
    staff_web, job_factory, mixed
):
    child = job_factory(type="noop", depends_on=[job_factory(type="noop")])
    parent = Job.objects.get(id=child.parent_edges.get().depends_on_id)
    parent = move_to(parent, S.FAILED)  # cancels the child
    assert Job.objects.get(id=child.id).status == S.CANCELLED
    retrying = Job.objects.get(id=mixed["retrying"].id)
    Job.objects.filter(id=retrying.id).update(next_attempt_at=timezone.now() + timedelta(hours=1))
    response = _post(staff_web, "retry", [retrying, parent], confirm="yes")
    assert response.status_code == 302
    hurried = Job.objects.get(id=retrying.id)
    assert hurried.status == S.RETRYING and hurried.next_attempt_at <= timezone.now()
    assert Job.objects.get(id=parent.id).status == S.PENDING
    assert Job.objects.get(id=child.id).status == S.CANCELLED  # alone: the child stays
    assert ExecutionLog.objects.filter(job=hurried, context__retry_now=True).exists()


def test_redrive_brings_back_the_failed_job_with_the_descendants_it_cancelled(
    staff_web, job_factory
):
    parent = job_factory(type="noop")
    child = job_factory(type="noop", depends_on=[parent])
    move_to(parent, S.FAILED)
    response = _post(staff_web, "redrive", [parent], confirm="yes")
    assert response.status_code == 302
    assert Job.objects.get(id=parent.id).status == S.PENDING
    assert Job.objects.get(id=child.id).status == S.PENDING
    entry = OperatorAction.objects.get()
    assert entry.count == 2 and entry.detail["revived"] == 1


def test_all_that_match_the_filter_acts_on_the_matching_jobs_only(staff_web, job_factory):
    failed = [move_to(job_factory(type="fail"), S.FAILED) for _ in range(3)]
    others = [move_to(job_factory(type="noop"), S.FAILED), job_factory(type="fail")]
    fields = {"action": "redrive", "scope": "all", "type": "fail", "status": "failed"}
    preview = staff_web.post(ACTION, fields)
    assert preview.context["plan"].selected == 3
    assert staff_web.post(ACTION, {**fields, "confirm": "yes"}).status_code == 302
    assert {Job.objects.get(id=j.id).status for j in failed} == {S.PENDING}
    assert Job.objects.get(id=others[0].id).status == S.FAILED


def test_all_that_match_is_capped_and_the_confirmation_says_so(staff_web, job_factory, monkeypatch):
    from admin_api.console import jobs_page

    monkeypatch.setattr(jobs_page, "BULK_LIMIT", 2)
    for _ in range(3):
        job_factory(type="noop")
    preview = staff_web.post(ACTION, {"action": "cancel", "scope": "all"})
    assert preview.context["plan"].selected == 2 and preview.context["capped"]
    assert "repeat for the rest" in preview.content.decode()


def test_a_job_that_changed_after_the_confirmation_is_skipped_not_forced(staff_user, job_factory):
    """The plan the operator confirmed said "cancel"; the job completed before the click."""
    job = job_factory(type="noop")
    the_plan = job_actions.plan("cancel", [(job.id, S.PENDING)])
    move_to(job, S.COMPLETED)
    outcome = job_actions.apply(staff_user, the_plan, "test")
    assert (outcome.touched, outcome.missed) == ([], 1)
    assert Job.objects.get(id=job.id).status == S.COMPLETED
    assert OperatorAction.objects.get().detail["skipped"] == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"action": "delete"}, "action"),
        ({"action": "cancel"}, "ids"),
        ({"action": "cancel", "ids": "nope"}, "ids"),
        ({"action": "cancel", "scope": "all", "status": "bogus"}, "status"),
    ],
)
def test_a_bad_action_request_is_a_400_naming_the_field(staff_web, fields, field):
    response = staff_web.post(ACTION, fields)
    assert response.status_code == 400
    assert field in response.json()


# --- who may act ---------------------------------------------------------------------------


def test_an_ordinary_user_acts_on_their_own_jobs_and_gets_404_for_anothers(
    web, job_factory, other_user
):
    mine = job_factory(type="noop")
    theirs = job_factory(owner=other_user, type="noop")
    assert _post(web, "cancel", [theirs], confirm="yes").status_code == 404
    assert _post(web, "cancel", [mine, theirs], confirm="yes").status_code == 404
    assert Job.objects.get(id=theirs.id).status == S.PENDING
    assert Job.objects.get(id=mine.id).status == S.PENDING  # all or nothing
    assert _post(web, "cancel", [mine], confirm="yes").status_code == 302
    assert Job.objects.get(id=mine.id).status == S.CANCELLED


def test_all_that_match_for_an_ordinary_user_never_reaches_anothers_jobs(
    web, job_factory, other_user
):
    theirs = job_factory(owner=other_user, type="noop")
    mine = job_factory(type="noop")
    assert (
        web.post(ACTION, {"action": "cancel", "scope": "all", "confirm": "yes"}).status_code == 302
    )
    assert Job.objects.get(id=theirs.id).status == S.PENDING
    assert Job.objects.get(id=mine.id).status == S.CANCELLED


def test_an_on_call_viewer_sees_every_job_and_every_action_is_refused(
    viewer_web, job_factory, other_user
):
    jobs = [job_factory(type="noop"), move_to(job_factory(owner=other_user), S.FAILED)]
    page = viewer_web.get(URL)
    assert set(_ids(page)) == {str(j.id) for j in jobs}
    assert b'id="action-cancel"' not in page.content
    for action in job_actions.ACTIONS:
        assert _post(viewer_web, action, jobs).status_code == 403
        assert _post(viewer_web, action, jobs, confirm="yes").status_code == 403
        assert viewer_web.post(ACTION, {"action": action, "scope": "all"}).status_code == 403
    assert [Job.objects.get(id=j.id).status for j in jobs] == [S.PENDING, S.FAILED]
    assert not OperatorAction.objects.exists()


def test_an_action_without_the_csrf_token_is_refused(staff_user, job_factory):
    job = job_factory(type="noop")
    client = _web(staff_user, csrf=True)
    assert _post(client, "cancel", [job], confirm="yes").status_code == 403
    assert Job.objects.get(id=job.id).status == S.PENDING


def test_an_anonymous_visitor_is_sent_to_log_in(client, job_factory):
    assert client.get(URL).status_code == 302
    job = job_factory(type="noop")
    assert _post(client, "cancel", [job], confirm="yes").status_code == 302
    assert Job.objects.get(id=job.id).status == S.PENDING
