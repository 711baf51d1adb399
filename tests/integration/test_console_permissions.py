"""Who may do what, for every action of the console and every change of the staff API.

Three users who must change nothing: an ordinary user acting on what is not theirs (another
user's job or schedule, or a platform-wide thing: dead letters, pauses, workers), an on-call
viewer (not staff, ``view_everything``) and a read-only staff user (staff, and
``view_everything``). Each is refused both steps of every action (the first POST that only
counts, and the confirmed one that acts), and the action's target and the audit log are
unchanged afterwards. An operator without the CSRF token is refused too. The control: the
same requests from an operator change the target, so only the role made the difference.

``ACTIONS`` has one row per action; ``test_the_table_names_every_console_action`` fails when
an action URL is added to the console without one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.test import Client
from django.urls import resolve, reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from admin_api.console import pausing
from admin_api.dashboard import urlpatterns as dashboard_urls
from admin_api.models import OperatorAction
from jobs.models import DeadLetter, Job, JobStatus, Limit, Pause
from jobs.schedules import services as schedules
from jobs.schedules.models import Schedule
from tests.factories import dead_letter, move_to
from workers import liveness

pytestmark = pytest.mark.django_db
S = JobStatus


@dataclass
class Case:
    """One action: where it posts, what the counting POST sends, what the acting one adds,
    what an ordinary user who does not own the target gets, and the target's state."""

    url: str
    fields: dict[str, str]
    confirm: dict[str, str]
    stranger: int
    state: Callable[[], Any]
    #: The confirmation is a GET of the same URL (the schedules' actions) instead of a POST.
    confirm_by_get: bool = False
    ok: tuple[int, ...] = (200, 302)
    extra: dict[str, Any] = field(default_factory=dict)


def _job_state(job: Job) -> Callable[[], Any]:
    return lambda: (
        Job.objects.count(),
        *Job.objects.values_list("status", "attempt").get(id=job.id),
    )


def _job_action(action: str, status: JobStatus | None) -> Callable[..., Case]:
    def build(job_factory: Any, owner: Any, operator: Any) -> Case:
        job = job_factory(owner=owner)
        if status is not None:
            job = move_to(job, status)
        return Case(
            reverse("console-jobs-action"),
            {"ids": str(job.id), "action": action},
            {"confirm": "yes"},
            404,
            _job_state(job),
        )

    return build


def _clone(job_factory: Any, owner: Any, operator: Any) -> Case:
    job = job_factory(owner=owner)
    url = reverse("console-job-clone", args=[job.id])
    return Case(url, {}, {"body": '{"type": "noop"}'}, 404, _job_state(job), confirm_by_get=True)


def _letter_state(letter: DeadLetter) -> Callable[[], Any]:
    return lambda: (
        *DeadLetter.objects.values_list("requeued_at", "discarded_at").get(id=letter.id),
        Job.objects.get(id=letter.job_id).status,
    )


def _dead(verb: str, whole_group: bool) -> Callable[..., Case]:
    def build(job_factory: Any, owner: Any, operator: Any) -> Case:
        job = job_factory(owner=owner)
        dead_letter(job, error="KeyError: 'user-7'")
        letter = DeadLetter.objects.get(job=job)
        target = {"group": letter.fingerprint} if whole_group else {"letter": str(letter.id)}
        url = reverse(f"dashboard-dead-{verb}")
        return Case(url, target, {"confirm": "1"}, 403, _letter_state(letter))

    return build


def _pauses() -> list[tuple[Any, ...]]:
    return list(Pause.objects.order_by("id").values_list("id", "job_type", "priority"))


def _pause(fields: dict[str, str]) -> Callable[..., Case]:
    def build(job_factory: Any, owner: Any, operator: Any) -> Case:
        job_factory(owner=owner, type="fail")
        return Case(reverse("dashboard-pause"), fields, {"confirm": "1"}, 403, _pauses)

    return build


def _resume(job_factory: Any, owner: Any, operator: Any) -> Case:
    pause = pausing.pause_create(actor=operator, job_type="fail")
    fields = {"pause": str(pause.id)}
    return Case(reverse("dashboard-resume"), fields, {"confirm": "1"}, 403, _pauses)


def _worker(verb: str) -> Callable[..., Case]:
    def build(job_factory: Any, owner: Any, operator: Any) -> Case:
        # Alive by its heartbeat; no process answers, so the operator's broadcast waits its
        # bounded timeout and is recorded as unanswered (the audit row is the change).
        liveness.beat_once("ghost@host", {"concurrency": 1, "queues": ["normal"]}, ttl=60)
        url = reverse(f"dashboard-worker-{verb}")
        return Case(url, {"worker": "ghost@host"}, {"confirm": "1"}, 403, lambda: None)

    return build


def _schedule(action: str) -> Callable[..., Case]:
    def build(job_factory: Any, owner: Any, operator: Any) -> Case:
        data = {"name": f"nightly {action}", "interval_seconds": 3600, "job": {"type": "noop"}}
        schedule = schedules.schedule_create(owner=owner, data=data)
        if action == "resume":
            schedules.schedule_pause(schedule=schedule)

        def state() -> Any:
            fresh = Schedule.objects.get(id=schedule.id)
            return fresh.paused, fresh.next_fire_at, Job.objects.count()

        url = reverse("dashboard-schedule-action", args=[schedule.id, action])
        return Case(url, {}, {}, 404, state, confirm_by_get=True)

    return build


#: Every action of the console: (the name of the URL it posts to, how to set it up).
ACTIONS: dict[str, tuple[str, Callable[..., Case]]] = {
    "jobs: cancel": ("console-jobs-action", _job_action("cancel", None)),
    "jobs: retry now": ("console-jobs-action", _job_action("retry", S.FAILED)),
    "jobs: re-drive": ("console-jobs-action", _job_action("redrive", S.FAILED)),
    "job: clone and resubmit": ("console-job-clone", _clone),
    "dead: re-drive a group": ("dashboard-dead-redrive", _dead("redrive", True)),
    "dead: re-drive one letter": ("dashboard-dead-redrive", _dead("redrive", False)),
    "dead: discard a group": ("dashboard-dead-discard", _dead("discard", True)),
    "dead: discard one letter": ("dashboard-dead-discard", _dead("discard", False)),
    "queues: pause a type": ("dashboard-pause", _pause({"job_type": "fail"})),
    "queues: pause a priority": ("dashboard-pause", _pause({"priority": "low"})),
    "queues: resume": ("dashboard-resume", _resume),
    "workers: quiet": ("dashboard-worker-quiet", _worker("quiet")),
    "workers: stop": ("dashboard-worker-stop", _worker("stop")),
    "schedules: pause": ("dashboard-schedule-action", _schedule("pause")),
    "schedules: resume": ("dashboard-schedule-action", _schedule("resume")),
    "schedules: trigger now": ("dashboard-schedule-action", _schedule("trigger")),
}
#: The URL names those rows post to (the table must cover each one).
ACTION_URL_NAMES = {
    "console-jobs-action",
    "console-job-clone",
    "dashboard-dead-redrive",
    "dashboard-dead-discard",
    "dashboard-pause",
    "dashboard-resume",
    "dashboard-worker-quiet",
    "dashboard-worker-stop",
    "dashboard-schedule-action",
}
#: The console's pages and read-only files: GET only.
READ_URL_NAMES = {
    "dashboard",
    "dashboard-stats",
    "dashboard-job",
    "dashboard-job-graph",
    "dashboard-job-logs",
    "dashboard-asset",
    "dashboard-charts",
    "dashboard-schedules",
    "console-jobs",
    "console-job-export",
    "dashboard-dead",
    "dashboard-dead-group",
    "dashboard-queues",
    "dashboard-audit",
}


def _web(user: Any, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def _both_steps(client: Client, case: Case) -> tuple[int, int]:
    """The status of the counting step (a POST, or the confirmation's GET) and the acting one."""
    if case.confirm_by_get:
        first = client.get(case.url).status_code
    else:
        first = client.post(case.url, case.fields).status_code
    second = client.post(case.url, {**case.fields, **case.confirm}).status_code
    return first, second


def test_the_table_names_every_console_action():
    names = {p.name for p in dashboard_urls}
    assert names == ACTION_URL_NAMES | READ_URL_NAMES, names ^ (ACTION_URL_NAMES | READ_URL_NAMES)
    assert {url_name for url_name, _ in ACTIONS.values()} == ACTION_URL_NAMES


def _case(action: str, job_factory: Any, owner: Any, operator: Any) -> Case:
    url_name, build = ACTIONS[action]
    case = build(job_factory, owner, operator)
    assert resolve(case.url).url_name == url_name
    return case


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("who", ["stranger", "viewer", "staff viewer", "operator without CSRF"])
def test_no_one_but_an_operator_or_the_owner_changes_anything(
    action, who, user, other_user, viewer_user, staff_viewer_user, staff_user, job_factory
):
    case = _case(action, job_factory, other_user, staff_user)
    client = {
        "stranger": lambda: _web(user),
        "viewer": lambda: _web(viewer_user),
        "staff viewer": lambda: _web(staff_viewer_user),
        "operator without CSRF": lambda: _web(staff_user, csrf=True),
    }[who]()
    before, audited = case.state(), OperatorAction.objects.count()
    expected = case.stranger if who == "stranger" else 403
    if who == "operator without CSRF":
        # Only the acting POST is checked against CSRF: the first step may be a GET.
        status = client.post(case.url, {**case.fields, **case.confirm}).status_code
        assert status == 403, status
    else:
        assert _both_steps(client, case) == (expected, expected)
    assert case.state() == before
    assert OperatorAction.objects.count() == audited


@pytest.mark.parametrize("action", ACTIONS)
def test_the_same_requests_from_an_operator_do_it(action, other_user, staff_user, job_factory):
    case = _case(action, job_factory, other_user, staff_user)
    before, audited = case.state(), OperatorAction.objects.count()
    first, second = _both_steps(_web(staff_user), case)
    assert first == 200 and second in case.ok, (first, second)
    assert OperatorAction.objects.count() == audited + 1
    if case.state() is not None:
        assert case.state() != before


# --- the staff REST API -------------------------------------------------------------------


def _api(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def _api_changes(job_factory: Any, owner: Any, operator: Any) -> list[tuple[str, str, Any]]:
    job = job_factory(owner=owner)
    dead_letter(job)
    limit = Limit.objects.create(key="type:noop", max_concurrency=2)
    pause = pausing.pause_create(actor=operator, job_type="fail")
    return [
        ("post", f"/admin/dlq/{job.id}/retry", {}),
        ("post", "/admin/dlq/retry/", {"all": True}),
        ("post", "/admin/limits/", {"key": "type:fail", "max_concurrency": 1}),
        ("patch", f"/admin/limits/{limit.id}", {"rate": "5/s"}),
        ("delete", f"/admin/limits/{limit.id}", None),
        ("post", "/admin/pauses/", {"job_type": "noop"}),
        ("delete", f"/admin/pauses/{pause.id}", None),
    ]


def _api_state() -> Any:
    return (
        list(DeadLetter.objects.values_list("id", "requeued_at")),
        list(Limit.objects.values_list("id", "key", "max_concurrency", "rate")),
        _pauses(),
        OperatorAction.objects.count(),
    )


@pytest.mark.parametrize("who", ["stranger", "viewer", "staff viewer"])
def test_the_staff_apis_changes_are_refused_to_all_but_operators(
    who, user, other_user, viewer_user, staff_viewer_user, staff_user, job_factory
):
    client = _api({"stranger": user, "viewer": viewer_user, "staff viewer": staff_viewer_user}[who])
    changes = _api_changes(job_factory, other_user, staff_user)
    before = _api_state()
    for method, url, body in changes:
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == 403, (method, url, response.content)
    assert _api_state() == before
    # What staff may read, a read-only staff user reads too.
    reads = [client.get(url).status_code for url in ("/admin/dlq/", "/admin/limits/")]
    assert reads == ([200, 200] if who == "staff viewer" else [403, 403])


def test_the_staff_apis_changes_go_through_for_an_operator(other_user, staff_user, job_factory):
    client = _api(staff_user)
    for method, url, body in _api_changes(job_factory, other_user, staff_user):
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code in (200, 201, 204), (method, url, response.content)


# --- what a read-only user is shown ---------------------------------------------------------


@pytest.mark.parametrize("who", ["viewer", "staff viewer"])
def test_a_read_only_user_sees_every_page_and_is_offered_no_action(
    who, viewer_user, staff_viewer_user, other_user, staff_user, job_factory
):
    """Every page answers 200 and holds no form that posts, but the header's log-out."""
    reader = {"viewer": viewer_user, "staff viewer": staff_viewer_user}[who]
    job = move_to(job_factory(owner=other_user), S.FAILED)
    dead_letter(job_factory(owner=other_user), error="boom")
    letter = DeadLetter.objects.filter(requeued_at__isnull=True).first()
    assert letter is not None
    schedules.schedule_create(
        owner=other_user, data={"name": "n", "interval_seconds": 60, "job": {"type": "noop"}}
    )
    pausing.pause_create(actor=staff_user, job_type="fail")
    liveness.beat_once("ghost@host", {"concurrency": 1, "queues": ["normal"]}, ttl=60)
    client = _web(reader)
    pages = [
        reverse("dashboard"),
        reverse("console-jobs"),
        reverse("dashboard-job", args=[job.id]),
        reverse("dashboard-dead"),
        reverse("dashboard-dead-group", args=[letter.fingerprint]),
        reverse("dashboard-queues"),
        reverse("dashboard-audit"),
        reverse("dashboard-charts"),
        reverse("dashboard-schedules"),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        posting = html.count('method="post"')
        assert posting == html.count(f'action="{reverse("logout")}"'), url
