"""The console's job page (``/dashboard/jobs/<id>/``): payload and result folded, every
attempt with its worker, times, error and traceback, the timeline, the actions that apply,
clone and resubmit (validated as ``POST /jobs/``), the export; and who may do what. The
browser run is ``tests/e2e/test_console_jobs_browser.py``."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from admin_api.console import job_attempts, job_json
from admin_api.models import OperatorAction
from jobs.engine import attempts, transitions
from jobs.models import DeadLetter, Job, JobStatus
from tests.factories import move_to

pytestmark = pytest.mark.django_db
S = JobStatus


def _web(user: Any, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def _page(job: Job) -> str:
    return f"/dashboard/jobs/{job.id}/"


def _run_and_fail(job: Job, error: str, traceback: str) -> None:
    job = Job.objects.get(id=job.id)
    if job.status == S.RETRYING:
        Job.objects.filter(id=job.id).update(next_attempt_at=None)
    assert transitions.admit_jobs(job_ids=[job.id])
    job = Job.objects.get(id=job.id)
    assert attempts.job_start(job_id=job.id, attempt=job.attempt, worker=f"w{job.attempt}@host")
    attempts.job_fail_attempt(job_id=job.id, attempt=job.attempt, error=error, traceback=traceback)


def test_every_attempt_shows_its_worker_times_error_and_traceback(job_factory, staff_user):
    job = job_factory(type="noop", max_attempts=2)
    _run_and_fail(job, "ValueError: first", "Traceback: line 1 of the first")
    _run_and_fail(job, "KeyError: second", "Traceback: line 2 of the second")
    job = Job.objects.get(id=job.id)
    assert job.status == S.FAILED
    found = job_attempts.attempts(job)
    assert [(a.number, a.worker, a.outcome) for a in found] == [
        (1, "w1@host", S.RETRYING),
        (2, "w2@host", S.FAILED),
    ]
    assert found[0].error == "ValueError: first" and "first" in found[0].traceback
    assert found[1].error == "KeyError: second"
    assert found[1].traceback == DeadLetter.objects.get(job=job).traceback
    assert all(a.ended_at and a.duration is not None and a.ended_at >= a.started_at for a in found)
    html = _web(staff_user).get(_page(job)).content.decode()
    assert "Traceback: line 1 of the first" in html and "w2@host" in html
    assert html.count('class="bar"') == 2  # the timeline draws both attempts


def test_the_timeline_places_each_attempt_on_one_axis_from_first_start_to_last_end():
    t0 = timezone.now() - timedelta(seconds=100)
    first = job_attempts.Attempt(1, t0, "w", ended_at=t0 + timedelta(seconds=10))
    instant = job_attempts.Attempt(
        2, t0 + timedelta(seconds=50), "w", ended_at=t0 + timedelta(seconds=50)
    )
    last = job_attempts.Attempt(
        3, t0 + timedelta(seconds=80), "w", ended_at=t0 + timedelta(seconds=100)
    )
    job_attempts.timeline([first, instant, last])
    assert [(a.left, a.width) for a in (first, instant, last)] == [
        (0, 10),
        (50, job_attempts.MIN_BAR),  # an instant attempt still shows
        (80, 20),
    ]


def test_a_running_attempt_has_no_end_and_its_bar_reaches_now(job_factory):
    job = move_to(job_factory(type="noop"), S.RUNNING)
    found = job_attempts.attempts(job)
    assert [(a.outcome, a.ended_at) for a in found] == [(S.RUNNING, None)]
    timeline = job_attempts.timeline(found)
    assert (timeline.attempts[0].left, timeline.attempts[0].width) == (0, 100)


def test_large_json_values_are_folded_and_every_text_escaped():
    small = job_json.render({"a": 1})
    assert "<details>" not in small and "&quot;a&quot;: 1" in small
    big = job_json.render({"rows": list(range(100)), "note": "<script>x</script>" * 20, "n": 1})
    assert big.count("<details>") == 3  # the object, its long list and its long string
    assert "<script>" not in big and "&lt;script&gt;" in big


def test_the_page_shows_payload_and_result(staff_user, job_factory):
    job = move_to(job_factory(type="noop", payload={"seconds": 0}), S.COMPLETED, result={"ok": 7})
    html = _web(staff_user).get(_page(job)).content.decode()
    assert 'id="payload"' in html and "&quot;seconds&quot;: 0" in html
    assert 'id="result"' in html and "&quot;ok&quot;: 7" in html


@pytest.mark.parametrize(
    ("status", "actions"),
    [
        (S.PENDING, {"cancel"}),
        (S.RUNNING, {"cancel"}),
        (S.RETRYING, {"cancel", "retry"}),
        (S.FAILED, {"retry", "redrive"}),
        (S.COMPLETED, set()),
        (S.CANCELLED, set()),
    ],
)
def test_the_page_offers_the_actions_that_apply_to_the_jobs_state(
    staff_user, job_factory, status, actions
):
    job = job_factory(type="noop")
    if status != S.PENDING:
        job = move_to(job, status)
    html = _web(staff_user).get(_page(job)).content.decode()
    shown = {a for a in ("cancel", "retry", "redrive") if f'id="job-action-{a}"' in html}
    assert shown == actions
    assert 'id="job-clone"' in html


def test_the_job_page_costs_the_same_queries_with_one_attempt_and_many(staff_user, job_factory):
    web = _web(staff_user)
    few_job = job_factory(type="noop", max_attempts=10)
    _run_and_fail(few_job, "e", "t")
    many_job = job_factory(type="noop", max_attempts=10)
    for _ in range(6):
        _run_and_fail(many_job, "e", "t")
    # Both still in their backoff, so "why it waits" reads the same for both, however long
    # the set-up took (a backoff that ran out reads the limits and the capacity).
    later = timezone.now() + timedelta(hours=1)
    Job.objects.filter(id__in=[few_job.id, many_job.id]).update(next_attempt_at=later)
    counts = []
    for job in (few_job, many_job):
        with CaptureQueriesContext(connection) as queries:
            assert web.get(_page(job)).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


# --- clone and resubmit --------------------------------------------------------------------


def _clone_url(job: Job) -> str:
    return f"/dashboard/jobs/{job.id}/clone/"


def test_the_clone_form_holds_the_jobs_body_without_its_idempotency_key(user, job_factory):
    job = job_factory(type="noop", payload={"seconds": 1}, idempotency_key="once", priority="high")
    response = _web(user).get(_clone_url(job))
    body = json.loads(response.context["body"])
    assert body["type"] == "noop" and body["payload"] == {"seconds": 1}
    assert body["priority"] == "high" and "idempotency_key" not in body


def test_an_operator_clones_anothers_job_with_an_edited_payload_and_owns_the_new_one(
    staff_user, user, job_factory
):
    job = job_factory(owner=user, type="noop", payload={"seconds": 1})
    web = _web(staff_user)
    body = json.loads(web.get(_clone_url(job)).context["body"])
    body["payload"] = {"seconds": 0}
    response = web.post(_clone_url(job), {"body": json.dumps(body)})
    assert response.status_code == 302
    new = Job.objects.exclude(id=job.id).get()
    assert response["Location"] == _page(new)
    assert new.owner == staff_user and new.payload == {"seconds": 0} and new.status == S.PENDING
    entry = OperatorAction.objects.get()
    assert entry.action == "clone" and entry.detail == {"source": str(job.id)}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"type": "noop", "payload": ', "body"),
        ("[1]", "body"),
        ('{"type": "no-such-type"}', "type"),
        ('{"type": "noop", "priority": "urgent"}', "priority"),
        (
            '{"type": "noop", "resource_requirements": {"cpu_units": 0}}',
            "resource_requirements.cpu_units",
        ),
        ('{"type": "noop", "surprise": 1}', "surprise"),
        ('{"type": "noop", "depends_on": ["00000000-0000-0000-0000-000000000000"]}', "depends_on"),
    ],
)
def test_a_bad_clone_is_refused_by_field_as_post_jobs_refuses_it(
    user, job_factory, api, body, field
):
    job = job_factory(type="noop")
    response = _web(user).post(_clone_url(job), {"body": body})
    assert response.status_code in (400, 409)
    assert field in [name for name, _ in response.context["errors"]]
    assert f'data-field="{field}"' in response.content.decode()
    assert Job.objects.count() == 1
    if field != "body":  # the API says the same about the same body
        assert field.split(".")[0] in api.post("/jobs/", json.loads(body), format="json").json()


def test_clone_permissions_owner_viewer_stranger_and_csrf(
    user, other_user, viewer_user, job_factory
):
    job = job_factory(owner=user, type="noop")
    body = {"body": json.dumps({"type": "noop"})}
    assert _web(other_user).get(_clone_url(job)).status_code == 404
    assert _web(other_user).post(_clone_url(job), body).status_code == 404
    assert _web(viewer_user).get(_clone_url(job)).status_code == 403
    assert _web(viewer_user).post(_clone_url(job), body).status_code == 403
    assert _web(user, csrf=True).post(_clone_url(job), body).status_code == 403
    assert Job.objects.count() == 1
    assert _web(user).post(_clone_url(job), body).status_code == 302
    assert Job.objects.count() == 2


def test_an_on_call_viewer_sees_the_page_without_any_action(viewer_user, other_user, job_factory):
    job = move_to(job_factory(owner=other_user, type="noop"), S.FAILED)
    html = _web(viewer_user).get(_page(job)).content.decode()
    assert 'id="attempts"' in html
    assert 'id="job-action-' not in html and 'id="job-clone"' not in html


def test_the_actions_from_the_job_page_come_back_to_it(staff_user, job_factory):
    job = move_to(job_factory(type="noop"), S.FAILED)
    web = _web(staff_user)
    fields = {"ids": str(job.id), "action": "redrive", "next": _page(job)}
    confirm = web.post("/dashboard/jobs/action/", fields)
    assert confirm.context["plan"].selected == 1
    done = web.post("/dashboard/jobs/action/", {**fields, "confirm": "yes"})
    assert done["Location"] == _page(job)
    assert Job.objects.get(id=job.id).status == S.PENDING
    assert "Re-drive: 1 of 1 selected job(s) done." in web.get(_page(job)).content.decode()


def test_a_next_to_another_site_is_not_followed(staff_user, job_factory):
    job = job_factory(type="noop")
    fields = {
        "ids": str(job.id),
        "action": "cancel",
        "next": "https://evil.example/",
        "confirm": "yes",
    }
    response = _web(staff_user).post("/dashboard/jobs/action/", fields)
    assert response["Location"] == "/dashboard/jobs/"


def test_the_export_downloads_from_the_page_for_whoever_may_see_the_job(
    settings, tmp_path, user, other_user, viewer_user, staff_user, job_factory
):
    from jobs.types import JobContext, get_handler

    settings.DRACONIC_EXPORT_DIR = tmp_path / "exports"
    job = job_factory(owner=user, type="data_export", payload={"rows": [{"a": 1}], "format": "csv"})
    handler = get_handler("data_export")
    assert handler is not None
    job = move_to(job, S.COMPLETED, result=handler.run(JobContext(job)))
    url = f"/dashboard/jobs/{job.id}/export"
    assert 'id="job-export"' in _web(user).get(_page(job)).content.decode()
    for who in (user, staff_user, viewer_user):
        response = _web(who).get(url)
        assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
        assert b"a" in b"".join(response.streaming_content)
    assert _web(other_user).get(url).status_code == 404
    plain = job_factory(owner=user, type="noop")
    assert 'id="job-export"' not in _web(user).get(_page(plain)).content.decode()
    assert _web(user).get(f"/dashboard/jobs/{plain.id}/export").status_code == 404


# --- the live log ---------------------------------------------------------------------------


def _logs(client: Client, job: Job, since: Any = 0) -> Any:
    return client.get(f"/dashboard/jobs/{job.id}/logs.json", {"since": since})


def test_logs_json_gives_the_lines_after_the_cursor_and_the_status_now(
    user, viewer_user, staff_user, other_user, job_factory
):
    """What the page polls for its live log: a handler's own lines too (they come with no
    event), for whoever may see the job."""
    from jobs.types import JobContext

    job = move_to(job_factory(owner=user, type="noop"), S.RUNNING)
    first = _logs(_web(user), job).json()
    assert first["status"] == S.RUNNING and first["logs"]
    cursor = first["logs"][-1]["id"]
    JobContext(job).log("halfway there", level="warning")
    for who in (user, viewer_user, staff_user):
        later = _logs(_web(who), job, cursor).json()
        assert [(line["message"], line["level"]) for line in later["logs"]] == [
            ("halfway there", "warning")
        ]
        assert later["logs"][0]["id"] > cursor
    assert _logs(_web(other_user), job).status_code == 404
    assert _logs(_web(user), job, "-1").json() == {
        "since": ["a log line's id (a non-negative integer)"]
    }


def test_logs_json_costs_the_same_queries_with_few_lines_and_many(user, job_factory):
    from jobs.types import JobContext

    web = _web(user)
    few, many = job_factory(type="noop"), job_factory(type="noop")
    for n in range(300):
        JobContext(many).log(f"line {n}")
    counts = []
    for job in (few, many):
        with CaptureQueriesContext(connection) as queries:
            answer = _logs(web, job)
        assert answer.status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]
    assert len(answer.json()["logs"]) == 200  # a page; the page asks again from its last line
