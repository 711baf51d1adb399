"""The dead-letter page (``/dashboard/dead/``): letters grouped by type and error shape, each
group's count and first and last seen, re-drive and discard of a group or of one letter
(count first, then act), who may do it, and ``GET /admin/dlq/`` agreeing on discard."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from admin_api.models import OperatorAction
from jobs.engine.fingerprint import fingerprint
from jobs.models import DeadLetter, ExecutionLog, Job, JobStatus
from tests.factories import dead_letter

pytestmark = pytest.mark.django_db


def _client(user: Any, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def _fill(job_factory: Any) -> dict[str, list[Job]]:
    """Two groups of noop (a KeyError over different keys, a timeout) and one of fail."""
    groups: dict[str, list[Job]] = {"key": [], "timeout": [], "other": []}
    for n in range(3):
        job = job_factory()
        dead_letter(job, error=f"KeyError: 'user-{n}'")
        groups["key"].append(job)
    for seconds in (30, 60):
        job = job_factory()
        dead_letter(job, error=f"timed out after {seconds}s")
        groups["timeout"].append(job)
    job = job_factory(type="fail")
    dead_letter(job, error="KeyError: 'user-9'")
    groups["other"].append(job)
    return groups


def _rows(html: str) -> dict[str, int]:
    """fingerprint -> count, as the page shows them."""
    found = re.findall(r'data-fingerprint="([0-9a-f]{40})".*?data-count>(\d+)<', html, re.S)
    return {fp: int(n) for fp, n in found}


def test_letters_are_grouped_by_type_and_error_shape_with_counts(
    staff_user: Any, job_factory: Any
) -> None:
    _fill(job_factory)
    response = _client(staff_user).get("/dashboard/dead/")
    assert response.status_code == 200
    rows = _rows(response.content.decode())
    assert rows == {
        fingerprint("noop", "KeyError: 'x'"): 3,
        fingerprint("noop", "timed out after 1s"): 2,
        fingerprint("fail", "KeyError: 'x'"): 1,
    }
    assert "KeyError: &lt;str&gt;" in response.content.decode()
    assert DeadLetter.objects.filter(fingerprint="").count() == 0


def test_the_groups_page_costs_the_same_queries_with_few_and_many_letters(
    staff_user: Any, job_factory: Any
) -> None:
    client = _client(staff_user)
    dead_letter(job_factory(), error="KeyError: 'a'")
    client.get("/dashboard/dead/")  # warm the session and the user's permission cache
    with CaptureQueriesContext(connection) as few:
        assert client.get("/dashboard/dead/").status_code == 200
    for n in range(30):
        dead_letter(
            job_factory(type="fail" if n % 2 else "noop"), error=f"ValueError: row {n} of {n * 7}"
        )
    with CaptureQueriesContext(connection) as many:
        assert client.get("/dashboard/dead/").status_code == 200
    assert len(many) == len(few)
    group = fingerprint("noop", "ValueError: row 1 of 2")
    client.get(f"/dashboard/dead/{group}/")
    with CaptureQueriesContext(connection) as page:
        response = client.get(f"/dashboard/dead/{group}/")
    assert response.content.decode().count("data-letter-id=") == 15
    assert len(page) == len(few)  # a group's page: its letters in one query, as many as groups


def test_a_group_redrive_says_how_many_first_then_redrives_them_and_audits(
    staff_user: Any, job_factory: Any
) -> None:
    groups = _fill(job_factory)
    client = _client(staff_user)
    group = fingerprint("noop", "KeyError: 'x'")

    confirm = client.post("/dashboard/dead/redrive/", {"group": group})
    assert confirm.status_code == 200
    assert b"Re-drive 3 dead letter(s)" in confirm.content
    assert b'name="confirm" value="3"' in confirm.content
    assert Job.objects.filter(status=JobStatus.FAILED).count() == 6  # the count changed nothing

    done = client.post("/dashboard/dead/redrive/", {"group": group, "confirm": "3"})
    assert done.status_code == 200
    assert b"Re-drove 3 job(s)" in done.content
    redriven = {j.id for j in groups["key"]}
    assert {j.id for j in Job.objects.filter(status=JobStatus.PENDING)} == redriven
    entry = OperatorAction.objects.get()
    assert (entry.actor_name, entry.action, entry.count) == ("operator", "redrive", 3)
    assert ExecutionLog.objects.filter(context__operator_action=entry.id).count() == 3
    assert group not in _rows(client.get("/dashboard/dead/").content.decode())


def test_discarding_one_letter_takes_it_out_of_every_dlq_view_and_the_job_stays_failed(
    staff_user: Any, staff_api: Any, job_factory: Any
) -> None:
    groups = _fill(job_factory)
    client = _client(staff_user)
    job = groups["timeout"][0]
    letter = DeadLetter.objects.get(job=job)

    confirm = client.post("/dashboard/dead/discard/", {"letter": str(letter.id)})
    assert b"Discard 1 dead letter(s)" in confirm.content
    done = client.post("/dashboard/dead/discard/", {"letter": str(letter.id), "confirm": "1"})
    assert b"Discarded 1 dead letter(s)" in done.content

    assert Job.objects.get(id=job.id).status == JobStatus.FAILED
    listed = {row["job"]["id"] for row in staff_api.get("/admin/dlq/").json()["results"]}
    assert str(job.id) not in listed and len(listed) == 5
    assert (
        _rows(client.get("/dashboard/dead/").content.decode())[
            fingerprint("noop", "timed out after 1s")
        ]
        == 1
    )
    assert OperatorAction.objects.get().action == "discard"
    # A second confirm of the same letter finds nothing left to discard.
    again = client.post("/dashboard/dead/discard/", {"letter": str(letter.id), "confirm": "1"})
    assert b"Discarded 0 dead letter(s)" in again.content


def test_an_action_acts_on_no_more_than_the_confirmation_said(
    staff_user: Any, job_factory: Any
) -> None:
    groups = _fill(job_factory)
    group = fingerprint("noop", "KeyError: 'x'")
    done = _client(staff_user).post("/dashboard/dead/discard/", {"group": group, "confirm": "2"})
    assert b"Discarded 2 dead letter(s)" in done.content
    assert DeadLetter.objects.filter(job__in=groups["key"], discarded_at__isnull=True).count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "group"),
        ({"group": "x" * 40}, "group"),
        ({"letter": "1e3"}, "letter"),
        ({"group": "a" * 40, "letter": "1"}, "letter"),
        ({"letter": "1", "confirm": "many"}, "confirm"),
    ],
)
def test_a_bad_action_is_a_400_naming_the_field(
    staff_user: Any, body: dict[str, str], field: str
) -> None:
    response = _client(staff_user).post("/dashboard/dead/redrive/", body)
    assert response.status_code == 400
    assert field in response.json()


def test_who_may_see_and_act(
    user: Any, viewer_user: Any, staff_user: Any, job_factory: Any
) -> None:
    groups = _fill(job_factory)
    letter = DeadLetter.objects.get(job=groups["other"][0])
    body = {"letter": str(letter.id), "confirm": "1"}
    # An ordinary user: not this page (it shows everyone's letters), and no action.
    assert _client(user).get("/dashboard/dead/").status_code == 403
    assert _client(user).post("/dashboard/dead/redrive/", body).status_code == 403
    # The on-call viewer sees, without buttons, and every action is refused.
    seen = _client(viewer_user).get("/dashboard/dead/")
    assert seen.status_code == 200 and b"Re-drive group" not in seen.content
    for verb in ("redrive", "discard"):
        assert _client(viewer_user).post(f"/dashboard/dead/{verb}/", body).status_code == 403
    assert Client().get("/dashboard/dead/").status_code == 302  # to the login page
    assert not OperatorAction.objects.exists()
    assert DeadLetter.objects.get(id=letter.id).discarded_at is None
    # The operator, but only with the CSRF token.
    assert _client(staff_user, csrf=True).post("/dashboard/dead/discard/", body).status_code == 403
    assert _client(staff_user).post("/dashboard/dead/discard/", body).status_code == 200
    assert DeadLetter.objects.get(id=letter.id).discarded_at is not None


def test_letters_written_without_a_fingerprint_are_one_group_of_their_own(
    staff_user: Any, job_factory: Any
) -> None:
    """Rows a raw INSERT wrote (the bench's, the scale test's) have no fingerprint: a group
    named ``-``, not a 500."""
    _fill(job_factory)
    DeadLetter.objects.filter(job__type="fail").update(fingerprint="")
    client = _client(staff_user)
    page = client.get("/dashboard/dead/").content.decode()
    assert 'data-fingerprint="-"' in page
    assert client.get("/dashboard/dead/-/").content.decode().count("data-letter-id=") == 1
    done = client.post("/dashboard/dead/discard/", {"group": "-", "confirm": "1"})
    assert b"Discarded 1 dead letter(s)" in done.content
    assert not DeadLetter.objects.filter(fingerprint="", discarded_at__isnull=True).exists()
