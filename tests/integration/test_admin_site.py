"""The Django admin at /admin/: staff browse jobs, edges, logs and dead letters; the two
actions change state only through the services."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from jobs.admin import LOG_INLINE_LIMIT
from jobs.engine.deadletter import job_dead_letter_waiting
from jobs.models import DeadLetter, DeadLetterReason, ExecutionLog, Job, JobStatus
from tests.factories import move_to

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/jobs/job/"


@pytest.fixture
def operator(django_user_model: Any) -> Client:
    """A logged-in superuser (the `admin` that `make run` creates is one)."""
    user = django_user_model.objects.create_superuser("root")
    client = Client()
    client.force_login(user)
    return client


def _fail(job: Job) -> Job:
    """Put a job in the DLQ the way the worker does (through the lifecycle services)."""
    job_dead_letter_waiting(
        job_id=job.id,
        reason=DeadLetterReason.NON_RETRYABLE,
        error="boom",
    )
    return Job.objects.get(id=job.id)


def test_staff_sees_the_job_changelist_with_its_filters(operator, job_factory):
    job = job_factory(type="noop", priority="high")
    response = operator.get(CHANGELIST)
    assert response.status_code == 200
    body = response.content.decode()
    assert str(job.id) in body
    for title in ("By status", "By priority", "By type"):
        assert title in body
    assert "Cancel selected jobs" in body


def test_the_changelist_filters_by_status_priority_and_type(operator, job_factory):
    high = job_factory(type="noop", priority="high")
    low = job_factory(
        type="data_processing", priority="low", payload={"operation": "sum", "values": [1]}
    )
    body = operator.get(
        CHANGELIST, {"priority__exact": "1", "status__exact": "pending"}
    ).content.decode()
    assert str(high.id) in body and str(low.id) not in body
    body = operator.get(CHANGELIST, {"type": "data_processing"}).content.decode()
    assert str(low.id) in body and str(high.id) not in body


def test_search_finds_a_job_by_id_and_by_type(operator, job_factory):
    one, two = (
        job_factory(type="noop"),
        job_factory(type="data_processing", payload={"operation": "sum", "values": [1]}),
    )
    body = operator.get(CHANGELIST, {"q": str(one.id)}).content.decode()
    assert str(one.id) in body and str(two.id) not in body
    body = operator.get(CHANGELIST, {"q": "data_processing"}).content.decode()
    assert str(two.id) in body and str(one.id) not in body
    assert operator.get(CHANGELIST, {"q": "not-a-uuid-nor-type"}).status_code == 200


def test_a_jobs_change_page_shows_its_parents_and_logs_read_only(operator, job_factory):
    parent = job_factory(type="noop")
    child = job_factory(type="noop", depends_on=[parent])
    response = operator.get(f"/admin/jobs/job/{child.id}/change/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Depends on (parents)" in body and str(parent.id) in body
    assert "Execution log (newest" in body and "submitted" in body
    # Read-only: no form field for status, and no save button.
    assert 'name="status"' not in body
    assert 'name="_save"' not in body


def test_the_log_inline_shows_only_the_newest_rows_newest_last(operator, job_factory):
    job = job_factory(type="noop")
    ExecutionLog.objects.bulk_create(
        ExecutionLog(job=job, message=f"line {i:03d}") for i in range(LOG_INLINE_LIMIT + 20)
    )
    response = operator.get(f"/admin/jobs/job/{job.id}/change/")
    body = response.content.decode()
    last, first_shown = f"line {LOG_INLINE_LIMIT + 19:03d}", f"line {20:03d}"
    assert last in body and first_shown in body
    assert "line 019" not in body and ">submitted<" not in body
    assert body.index(first_shown) < body.index(last)


def test_a_non_staff_user_is_sent_to_the_login_page(user):
    client = Client()
    client.force_login(user)
    response = client.get(CHANGELIST)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_cancel_action_cancels_a_pending_job_and_skips_finished_ones(operator, job_factory):
    pending = job_factory(type="noop")
    done = job_factory(type="noop")
    move_to(done, JobStatus.CANCELLED)
    response = operator.post(
        CHANGELIST,
        {
            "action": "cancel_selected",
            "_selected_action": [str(pending.id), str(done.id)],
            "index": 0,
        },
        follow=True,
    )
    assert response.status_code == 200
    assert Job.objects.get(id=pending.id).status == JobStatus.CANCELLED
    log = ExecutionLog.objects.filter(job=pending, to_status=JobStatus.CANCELLED).get()
    assert "in the admin" in log.message
    body = response.content.decode()
    assert "Cancelled 1 job(s)." in body
    assert f"Skipped 1 finished job(s): {done.id} (cancelled)" in body


def test_a_view_only_staff_member_cannot_cancel(job_factory, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_job"))
    client = Client()
    client.force_login(viewer)
    job = job_factory(type="noop")
    assert client.get(CHANGELIST).status_code == 200
    client.post(
        CHANGELIST, {"action": "cancel_selected", "_selected_action": [str(job.id)], "index": 0}
    )
    assert Job.objects.get(id=job.id).status == JobStatus.PENDING


def test_the_redrive_action_moves_a_dead_letter_back_to_pending(operator, job_factory):
    job = _fail(job_factory(type="noop"))
    assert job.status == JobStatus.FAILED
    letter = DeadLetter.objects.get(job=job)
    assert operator.get("/admin/jobs/deadletter/").status_code == 200
    response = operator.post(
        "/admin/jobs/deadletter/",
        {"action": "redrive_selected", "_selected_action": [letter.pk], "index": 0},
        follow=True,
    )
    assert "Re-drove 1 job(s)." in response.content.decode()
    assert Job.objects.get(id=job.id).status == JobStatus.PENDING
    assert DeadLetter.objects.get(pk=letter.pk).requeued_at is not None


def test_the_other_changelists_and_the_log_link_answer(operator, job_factory):
    parent = job_factory(type="noop")
    job_factory(type="noop", depends_on=[parent])
    for url in (
        "/admin/jobs/jobdependency/",
        "/admin/jobs/executionlog/",
        f"/admin/jobs/executionlog/?job__id__exact={parent.id}",
        f"/admin/jobs/jobdependency/?q={parent.id}",
    ):
        response = operator.get(url)
        assert response.status_code == 200, url
        assert str(parent.id) in response.content.decode(), url


def test_the_job_changelist_does_not_query_per_row(
    operator, job_factory, django_assert_max_num_queries
):
    job_factory(type="noop")
    with CaptureQueriesContext(connection) as few:
        assert operator.get(CHANGELIST).status_code == 200
    for _ in range(10):
        job_factory(type="noop")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert operator.get(CHANGELIST).status_code == 200
