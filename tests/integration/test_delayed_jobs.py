"""Delayed jobs without worker processes: what ``run_at`` and ``delay_seconds`` accept and
store, that admission leaves a job alone before its time, cancel before its time, the
``scheduled`` filter, and the next-due query the scheduler sleeps on. (The timing itself,
with real scheduler and worker processes, is in tests/e2e/test_delayed.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from jobs.engine import admission, transitions, wakeup
from jobs.models import Job, JobStatus
from tests.factories import db_now, move_to, row_counts

pytestmark = pytest.mark.django_db


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def post(api: APIClient, **body: Any) -> Any:
    return api.post("/jobs/", {"type": "noop", **body}, format="json")


def test_run_at_with_an_offset_is_stored_shown_and_gates_admission(api: APIClient) -> None:
    due = timezone.now() + timedelta(hours=2)
    # The same instant written in another zone's offset.
    written = due.astimezone(timezone.get_fixed_timezone(90)).isoformat()
    response = post(api, run_at=written)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending"
    assert body["run_at"] == iso(due) and body["next_attempt_at"] == iso(due)
    job = Job.objects.get(id=body["id"])
    assert job.run_at == due and job.next_attempt_at == due


def test_delay_seconds_sets_run_at_that_many_seconds_from_now(api: APIClient) -> None:
    before = timezone.now()
    body = post(api, delay_seconds=90.5).json()
    job = Job.objects.get(id=body["id"])
    assert job.run_at is not None
    assert before + timedelta(seconds=90.5) <= job.run_at <= timezone.now() + timedelta(seconds=91)


def test_a_job_without_a_time_has_none(api: APIClient) -> None:
    body = post(api).json()
    assert body["run_at"] is None and body["next_attempt_at"] is None


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"run_at": "2030-01-01T12:00:00"}, "run_at", "no UTC offset"),
        ({"run_at": "2030-01-01 12:00:00"}, "run_at", "no UTC offset"),
        ({"run_at": "2030-01-01"}, "run_at", "RFC 3339"),
        ({"run_at": "tomorrow"}, "run_at", "RFC 3339"),
        ({"run_at": "2030-13-01T12:00:00Z"}, "run_at", "RFC 3339"),
        ({"run_at": "2030-01-01T12:00:00+24:00"}, "run_at", "RFC 3339"),
        ({"run_at": 1893499200}, "run_at", "RFC 3339"),
        ({"run_at": "2030-01-01T12:00:00\u0661Z"}, "run_at", "RFC 3339"),
        ({"run_at": "2999-01-01T12:00:00Z"}, "run_at", "366 days"),
        ({"run_at": "0001-01-01T00:00:00+01:00"}, "run_at", "out of range"),
        ({"delay_seconds": -1}, "delay_seconds", "greater than or equal to 0"),
        ({"delay_seconds": "60"}, "delay_seconds", "JSON number"),
        ({"delay_seconds": True}, "delay_seconds", "JSON number"),
        ({"delay_seconds": 10**9}, "delay_seconds", "less than or equal"),
        ({"run_at": "2026-01-01T12:00:00Z", "delay_seconds": 5}, "delay_seconds", "not both"),
        ({"run_at": "2026-01-01T12:00:00Z", "delay_seconds": 5}, "run_at", "not both"),
    ],
)
def test_a_bad_due_time_is_a_400_naming_the_field_and_stores_nothing(
    api: APIClient, body: dict[str, Any], field: str, words: str
) -> None:
    before = row_counts()
    response = post(api, **body)
    assert response.status_code == 400, response.content
    assert words in " ".join(response.json()[field]), response.json()
    assert row_counts() == before


def test_batch_items_each_take_their_own_time(api: APIClient) -> None:
    due = timezone.now() + timedelta(minutes=5)
    body = {
        "jobs": [
            {"key": "a", "type": "noop", "run_at": iso(due)},
            {"key": "b", "type": "noop", "delay_seconds": 60, "depends_on": ["a"]},
            {"key": "c", "type": "noop"},
        ]
    }
    response = api.post("/jobs/batch/", body, format="json")
    assert response.status_code == 201, response.content
    keys = response.json()["keys"]
    jobs = {k: Job.objects.get(id=i) for k, i in keys.items()}
    assert jobs["a"].run_at == due and jobs["a"].next_attempt_at == due
    assert jobs["b"].run_at is not None and jobs["b"].run_at > timezone.now()
    assert jobs["c"].run_at is None and jobs["c"].next_attempt_at is None
    shown = {j["id"]: j["run_at"] for j in response.json()["jobs"]}
    assert shown[keys["a"]] == iso(due) and shown[keys["c"]] is None


def test_a_bad_time_in_one_batch_item_is_a_400_naming_it_and_stores_nothing(
    api: APIClient,
) -> None:
    before = row_counts()
    body = {"jobs": [{"type": "noop"}, {"type": "noop", "run_at": "2030-01-01T12:00:00"}]}
    response = api.post("/jobs/batch/", body, format="json")
    assert response.status_code == 400, response.content
    errors = response.json()["jobs"]
    assert list(errors) == ["1"] and "no UTC offset" in errors["1"]["run_at"][0]
    assert row_counts() == before


def test_admission_leaves_a_job_before_its_time_and_admits_a_due_one(
    job_factory: Any,
) -> None:
    later = job_factory(run_at=timezone.now() + timedelta(hours=1))
    due = job_factory(run_at=db_now() - timedelta(seconds=1))
    assert admission.dispatch() == 1
    assert Job.objects.get(id=due.id).status == JobStatus.QUEUED
    later = Job.objects.get(id=later.id)
    assert later.status == JobStatus.PENDING and later.attempt == 0


def test_admission_keeps_run_at_and_clears_the_gate(job_factory: Any) -> None:
    due_at = db_now() - timedelta(seconds=1)
    job = job_factory(run_at=due_at)
    admission.dispatch()
    job = Job.objects.get(id=job.id)
    assert job.status == JobStatus.QUEUED
    assert job.run_at == due_at and job.next_attempt_at is None


def test_cancel_before_its_time_cancels_it_and_it_is_never_admitted(
    api: APIClient, job_factory: Any
) -> None:
    job = job_factory(run_at=timezone.now() + timedelta(hours=1))
    response = api.patch(f"/jobs/{job.id}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    Job.objects.filter(id=job.id).update(next_attempt_at=timezone.now())  # its time comes
    assert admission.dispatch() == 0
    job = Job.objects.get(id=job.id)
    assert job.status == JobStatus.CANCELLED and job.attempt == 0 and job.started_at is None


def test_scheduled_lists_what_waits_for_its_time_and_false_the_rest(
    api: APIClient, job_factory: Any
) -> None:
    delayed = job_factory(run_at=timezone.now() + timedelta(hours=1))
    due = job_factory(run_at=timezone.now() - timedelta(seconds=1))
    plain = job_factory()
    backoff = move_to(job_factory(), JobStatus.RUNNING)
    assert transitions.retry_attempt(
        job_id=backoff.id,
        attempt=backoff.attempt,
        error="boom",
        next_attempt_at=timezone.now() + timedelta(minutes=5),
        message="test set-up",
        context={},
    )
    cancelled = move_to(
        job_factory(run_at=timezone.now() + timedelta(hours=1)), JobStatus.CANCELLED
    )

    def listed(value: str) -> set[str]:
        response = api.get(f"/jobs/?scheduled={value}")
        assert response.status_code == 200, response.content
        return {j["id"] for j in response.json()["results"]}

    assert listed("true") == {str(delayed.id), str(backoff.id)}
    assert listed("false") == {str(due.id), str(plain.id), str(cancelled.id)}
    assert len(listed("")) == 5


def test_an_invalid_scheduled_value_is_a_400_naming_it(api: APIClient) -> None:
    response = api.get("/jobs/?scheduled=yes")
    assert response.status_code == 400
    assert "valid: true, false" in response.json()["scheduled"][0]


def test_seconds_until_due_is_the_earliest_future_delay_or_backoff(job_factory: Any) -> None:
    assert wakeup.seconds_until_due() is None
    now = db_now()  # the clock seconds_until_due counts by (the test transaction's start)
    job_factory(run_at=now - timedelta(seconds=5))  # due already: not a wake-up
    move_to(job_factory(run_at=now + timedelta(seconds=30)), JobStatus.CANCELLED)
    assert wakeup.seconds_until_due() is None
    job_factory(run_at=now + timedelta(hours=1))
    assert wakeup.seconds_until_due() == pytest.approx(3600)
    retried = move_to(job_factory(), JobStatus.RUNNING)
    transitions.retry_attempt(
        job_id=retried.id,
        attempt=retried.attempt,
        error="boom",
        next_attempt_at=now + timedelta(minutes=10),
        message="test set-up",
        context={},
    )
    assert wakeup.seconds_until_due() == pytest.approx(600)


def test_a_due_delayed_job_has_waited_since_its_run_at_not_its_submit(job_factory: Any) -> None:
    """The starvation guard counts a delayed job's wait from its due time: a job delayed for an
    hour is not "starving" the moment it comes due."""
    due_at = db_now() - timedelta(seconds=1)
    job = job_factory(run_at=due_at)
    Job.objects.filter(id=job.id).update(created_at=due_at - timedelta(hours=1))
    with transaction.atomic():
        (ready,) = admission.ready_page(admission.ready_order())
    assert ready.id == job.id and ready.waiting_since == due_at
    assert ready.effective_priority == ready.priority  # not aged by the hour before
