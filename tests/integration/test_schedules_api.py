"""``/schedules/``: create, list, get, update, delete, trigger, pause and resume; every bad
field a 400 naming it with nothing stored; a user sees only their own schedules."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from jobs.engine import wakeup
from jobs.models import Job, Schedule, ScheduleFire

pytestmark = pytest.mark.django_db

EVERY_MINUTE = {"name": "tick", "interval_seconds": 60, "job": {"type": "noop"}}


def create(api: Any, **body: Any) -> dict[str, Any]:
    response = api.post("/schedules/", {**EVERY_MINUTE, **body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_create_answers_the_schedule_with_its_next_fire_times(api):
    before = timezone.now()
    body = create(api, name="nightly", cron=None, interval_seconds=3600)
    assert body["name"] == "nightly" and body["cron"] is None and body["interval_seconds"] == 3600
    assert (body["overlap"], body["catchup"], body["timezone"]) == ("allow", "latest", "UTC")
    times = body["next_fire_times"]
    assert len(times) == 5 and times[0] == body["next_fire_at"]
    stored = Schedule.objects.get(id=body["id"])
    # First due one interval after it was created.
    assert before + timedelta(hours=1) <= stored.next_fire_at <= timezone.now() + timedelta(hours=1)
    assert body["last_runs"] == []


def test_cron_schedule_in_a_time_zone(api):
    body = create(api, interval_seconds=None, cron="30  2 * * *", timezone="Europe/Amsterdam")
    assert body["cron"] == "30 2 * * *"
    first = Schedule.objects.get(id=body["id"]).next_fire_at
    local = first.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Amsterdam"))
    assert (local.hour, local.minute) in {(2, 30), (3, 0)}


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"cron": "* * *"}, "cron", "5 fields"),
        ({"cron": "61 * * * *", "interval_seconds": None}, "cron", "not a valid cron"),
        ({"interval_seconds": None}, "cron", "exactly one of cron and interval_seconds"),
        ({"cron": "0 * * * *"}, "cron", "exactly one of cron and interval_seconds"),
        ({"interval_seconds": 0}, "interval_seconds", "greater than or equal to 1"),
        ({"interval_seconds": "60"}, "interval_seconds", "JSON number"),
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
        ({"overlap": "queue"}, "overlap", "valid: allow, skip, cancel_previous"),
        ({"catchup": "some"}, "catchup", "valid: none, latest, all"),
        ({"catchup_limit": 0}, "catchup_limit", "greater than or equal to 1"),
        ({"name": ""}, "name", "blank"),
        ({"colour": "red"}, "colour", "unknown field"),
        (
            {"start_at": "2030-01-02T00:00:00Z", "end_at": "2030-01-01T00:00:00Z"},
            "end_at",
            "later than start_at",
        ),
        ({"job": []}, "job", "JSON object"),
    ],
)
def test_bad_fields_are_400_naming_them_and_store_nothing(api, body, field, says):
    response = api.post("/schedules/", {**EVERY_MINUTE, **body}, format="json")
    assert response.status_code == 400, response.content
    assert says in str(response.json()[field]), response.json()
    assert not Schedule.objects.exists()


@pytest.mark.parametrize(
    ("job", "path", "says"),
    [
        (
            {"type": "send_email", "payload": {"subject": "hi"}},
            ("payload",),
            "payload.to: is required",
        ),
        ({"type": "nope"}, ("type",), "unknown job type"),
        ({"type": "noop", "priority": "urgent"}, ("priority",), "valid: critical, high"),
        ({"type": "noop", "idempotency_key": "k"}, ("idempotency_key",), "unknown field"),
        ({"type": "noop", "depends_on": []}, ("depends_on",), "unknown field"),
        ({"type": "noop", "delay_seconds": 5}, ("delay_seconds",), "unknown field"),
        ({"type": "noop", "run_at": "2030-01-01T00:00:00Z"}, ("run_at",), "unknown field"),
        (
            {"type": "noop", "resource_requirements": {"cpu_units": 0}},
            ("resource_requirements", "cpu_units"),
            "greater than or equal to 1",
        ),
    ],
)
def test_the_job_template_is_validated_like_post_jobs(api, job, path, says):
    response = api.post("/schedules/", {**EVERY_MINUTE, "job": job}, format="json")
    assert response.status_code == 400, response.content
    errors = response.json()["job"]
    for part in path:
        errors = errors[part]
    assert says in str(errors), response.json()
    assert not Schedule.objects.exists()


def test_list_get_update_delete_are_the_owners_only(api, other_api):
    mine = create(api)
    create(other_api, name="theirs")
    listed = api.get("/schedules/").json()
    assert [s["id"] for s in listed["results"]] == [mine["id"]]
    assert api.get(f"/schedules/{mine['id']}").json()["name"] == "tick"
    for method in ("get", "patch", "delete"):
        assert (
            getattr(other_api, method)(f"/schedules/{mine['id']}", {}, format="json").status_code
            == 404
        )
    for action in ("trigger", "pause", "resume"):
        assert other_api.post(f"/schedules/{mine['id']}/{action}").status_code == 404
    assert api.get("/schedules/not-a-uuid").status_code == 404
    assert api.get("/schedules/?paused=true").status_code == 400  # no such filter
    assert Schedule.objects.get(id=mine["id"]).name == "tick"


def test_anonymous_is_401(anon_api):
    assert anon_api.get("/schedules/").status_code == 401
    assert anon_api.post("/schedules/", EVERY_MINUTE, format="json").status_code == 401


def test_patch_validates_the_whole_schedule_and_moves_the_next_fire_time(api):
    body = create(api)
    url = f"/schedules/{body['id']}"
    bad = api.patch(url, {"job": {"type": "send_email", "payload": {}}}, format="json")
    assert bad.status_code == 400 and "payload" in bad.json()["job"]
    assert api.patch(url, {"overlap": "never"}, format="json").status_code == 400
    assert Schedule.objects.get(id=body["id"]).job == {"type": "noop"}

    renamed = api.patch(url, {"name": "renamed", "overlap": "skip"}, format="json").json()
    assert (renamed["name"], renamed["overlap"]) == ("renamed", "skip")
    assert renamed["next_fire_at"] == body["next_fire_at"]  # timing unchanged

    # Giving cron replaces interval_seconds.
    to_cron = api.patch(url, {"cron": "0 3 * * 1"}, format="json")
    assert to_cron.status_code == 200, to_cron.content
    assert (to_cron.json()["cron"], to_cron.json()["interval_seconds"]) == ("0 3 * * 1", None)
    assert to_cron.json()["next_fire_at"] != body["next_fire_at"]


def test_delete_keeps_the_jobs_it_fired(api):
    body = create(api)
    job = api.post(f"/schedules/{body['id']}/trigger").json()
    assert api.delete(f"/schedules/{body['id']}").status_code == 204
    assert not Schedule.objects.exists() and not ScheduleFire.objects.exists()
    assert Job.objects.get(id=job["id"]).schedule_id is None


def test_trigger_fires_one_job_that_records_its_schedule(api):
    body = create(api, job={"type": "noop", "priority": "high", "payload": {"seconds": 0}})
    response = api.post(f"/schedules/{body['id']}/trigger")
    assert response.status_code == 201, response.content
    job = response.json()
    assert (job["type"], job["priority"], job["payload"]) == ("noop", "high", {"seconds": 0})
    assert job["schedule"] == body["id"] and job["scheduled_for"] is not None
    assert api.get(f"/jobs/{job['id']}").json()["schedule"] == body["id"]
    runs = api.get(f"/schedules/{body['id']}").json()["last_runs"]
    assert runs == [
        {
            "due_at": job["scheduled_for"],
            "manual": True,
            "outcome": "fired",
            "detail": "triggered",
            "job_id": job["id"],
            "job_status": "pending",
        }
    ]
    assert (
        api.post(f"/schedules/{body['id']}/trigger", {"now": 1}, format="json").status_code == 400
    )


def test_pause_stops_and_resume_counts_from_now(api):
    body = create(api)
    url = f"/schedules/{body['id']}"
    paused = api.post(f"{url}/pause").json()
    assert paused["paused"] is True and paused["next_fire_at"] is None
    assert paused["next_fire_times"] == []
    assert api.post(f"{url}/pause").json()["paused"] is True  # idempotent
    before = timezone.now()
    resumed = api.post(f"{url}/resume").json()
    assert resumed["paused"] is False
    stored = Schedule.objects.get(id=body["id"]).next_fire_at
    assert stored >= before + timedelta(seconds=60)  # one interval after the resume
    assert api.post(f"{url}/resume", {"x": 1}, format="json").status_code == 400


def test_jobs_not_fired_by_a_schedule_say_so(api):
    job = api.post("/jobs/", {"type": "noop"}, format="json").json()
    assert job["schedule"] is None and job["scheduled_for"] is None


@pytest.mark.django_db(transaction=True)  # the wake-up is sent after the commit
def test_saving_a_schedule_asks_a_scheduler_to_read_the_due_times_again(api):
    """A scheduler reads the schedules' due times again only when one changed (not on every
    dispatch request): a save or a resume leaves the flag, which one scheduler takes."""
    wakeup.request_dispatch()  # a submit's request is not a schedule change
    assert wakeup.take_schedule_check() is False
    schedule = create(api)
    assert wakeup.take_schedule_check() is True
    assert wakeup.take_schedule_check() is False  # taken once
    api.post(f"/schedules/{schedule['id']}/pause", {}, format="json")
    api.post(f"/schedules/{schedule['id']}/resume", {}, format="json")
    assert wakeup.take_schedule_check() is True
