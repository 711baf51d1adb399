"""Who may see and touch what: a token for every jobs endpoint (401 with a token challenge
otherwise), other users' jobs hidden behind 404 and left untouched, ids that are not ours or
not ids at all answered 404, operator endpoints for staff only, and the HTML admin and the
dashboard behind their login.

Each case is written once here (they used to be written twice, in ``test_api_jobs.py`` and
``test_security.py``); a refused request must also leave the database as it was."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from jobs.models import JobStatus
from tests.factories import dead_letter, row_counts

pytestmark = pytest.mark.django_db

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
#: The endpoints of one job; ``dependencies`` answers with and without its trailing slash.
ID_ENDPOINTS = [
    ("get", "/jobs/{id}"),
    ("patch", "/jobs/{id}/cancel"),
    ("get", "/jobs/{id}/logs"),
    ("post", "/jobs/{id}/dependencies/"),
    ("post", "/jobs/{id}/dependencies"),
]
JOB_ENDPOINTS = [("get", "/jobs/"), ("post", "/jobs/"), ("post", "/jobs/batch/"), *ID_ENDPOINTS]
ADMIN_ENDPOINTS = [
    ("get", "/admin/dlq/"),
    ("post", "/admin/dlq/{id}/retry"),
    ("post", "/admin/dlq/retry/"),
    ("get", "/admin/health"),
    ("get", "/admin/metrics"),
]
#: Not our ids, not ids at all, and strings a careless lookup would interpret.
BAD_IDS = [
    UNKNOWN_ID,
    "not-a-uuid",
    "1",
    "%F0%9F%90%89",
    "x" * 300,
    "' OR 1=1 --",
    "%00",
    "{{7*7}}",
]


def _send(client: APIClient, method: str, url: str, body: Any = None) -> Any:
    return getattr(client, method)(url, body if body is not None else {}, format="json")


# --- a token for every jobs endpoint ----------------------------------------------------------


@pytest.mark.parametrize(("method", "url"), JOB_ENDPOINTS)
def test_every_jobs_endpoint_answers_401_with_a_token_challenge_to_anonymous_clients(
    anon_api: APIClient, job_factory: Any, method: str, url: str
) -> None:
    job = job_factory()
    before = row_counts()
    response = _send(anon_api, method, url.format(id=job.id), {"type": "noop"})
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == "Token"
    assert "credentials" in response.json()["detail"]
    assert row_counts() == before


def test_a_forged_token_is_401_with_a_token_challenge(anon_api: APIClient) -> None:
    anon_api.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    response = anon_api.get("/jobs/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


# --- other users' jobs, and ids that are not ids ---------------------------------------------


@pytest.mark.parametrize(("method", "url"), ID_ENDPOINTS)
def test_another_users_job_is_404_and_untouched(
    other_api: APIClient, job_factory: Any, method: str, url: str
) -> None:
    job = job_factory()
    theirs = job_factory(owner=other_api.user)  # type: ignore[attr-defined]
    before = row_counts()
    response = _send(other_api, method, url.format(id=job.id), {"depends_on": [str(theirs.id)]})
    assert response.status_code == 404, response.content
    assert set(response.json()) == {"detail"}
    job.refresh_from_db()
    assert job.status == JobStatus.PENDING
    assert job.cancel_requested is False
    assert row_counts() == before


def test_another_users_jobs_are_not_in_my_list(
    api: APIClient, other_api: APIClient, job_factory: Any
) -> None:
    mine = job_factory()
    job_factory(owner=other_api.user)  # type: ignore[attr-defined]
    data = api.get("/jobs/").json()
    assert [j["id"] for j in data["results"]] == [str(mine.id)]
    assert data["count"] == 1


@pytest.mark.parametrize(("method", "url"), ID_ENDPOINTS)
@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_an_unknown_or_malformed_id_is_404(
    api: APIClient, job_factory: Any, method: str, url: str, bad_id: str
) -> None:
    parent = job_factory()
    before = row_counts()
    response = _send(api, method, url.format(id=bad_id), {"depends_on": [str(parent.id)]})
    assert response.status_code == 404, response.content
    assert "detail" in response.json()
    assert "49" not in response.content.decode()  # {{7*7}} was not evaluated anywhere
    assert row_counts() == before


# --- operator endpoints -----------------------------------------------------------------------


@pytest.mark.parametrize(("method", "url"), ADMIN_ENDPOINTS)
def test_every_admin_endpoint_is_403_for_a_non_staff_user_and_401_for_anonymous(
    api: APIClient, anon_api: APIClient, job_factory: Any, method: str, url: str
) -> None:
    job = job_factory()
    dead_letter(job)
    assert getattr(api, method)(url.format(id=job.id), format="json").status_code == 403
    assert getattr(anon_api, method)(url.format(id=job.id), format="json").status_code == 401
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED


@pytest.mark.parametrize(("method", "url"), ADMIN_ENDPOINTS)
def test_every_admin_endpoint_is_open_to_staff(
    staff_api: APIClient, job_factory: Any, method: str, url: str
) -> None:
    job = job_factory()
    dead_letter(job)
    # A bulk re-drive needs a filter or "all": true (test_operator_strictness.py).
    body = {"all": True} if url == "/admin/dlq/retry/" else None
    response = _send(staff_api, method, url.format(id=job.id), body)
    # health is 503 without live workers: still an answer to staff, not a refusal
    expected = {200, 503} if "health" in url else {200}
    assert response.status_code in expected, response.content
    assert "detail" not in response.json()


# --- the HTML admin and the dashboard ---------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/", "/admin/jobs/job/", "/dashboard/"])
def test_it_sends_anonymous_browsers_to_the_login(path: str) -> None:
    response = APIClient().get(path)
    assert response.status_code == 302, response.status_code
    assert "login" in response["Location"]


@pytest.mark.parametrize("path", ["/admin/", "/admin/jobs/job/"])
def test_it_keeps_non_staff_sessions_out_of_the_html_admin(user: Any, path: str) -> None:
    client = APIClient()
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 302, response.status_code
    assert "login" in response["Location"]


@pytest.mark.parametrize("suffix", ["", "graph.json"])
def test_the_dashboard_hides_other_users_jobs_from_non_staff(
    user: Any, other_user: Any, job_factory: Any, suffix: str
) -> None:
    theirs = job_factory(owner=other_user)
    client = APIClient()
    client.force_login(user)
    assert client.get(f"/dashboard/jobs/{theirs.id}/{suffix}").status_code == 404
    assert str(theirs.id) not in client.get("/dashboard/").content.decode()
