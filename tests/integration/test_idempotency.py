"""An idempotency key means one request.

The same key with the same request answers the first job (200) and stores nothing. The same
key with a *different* request used to answer the first job too, so a client that reused a
key by mistake believed its second job had been accepted. Now it is a 409 naming
``idempotency_key`` and the differing fields, with the first job's id, as payment APIs do.
Keys are per owner and last as long as the job row.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from jobs.api.submit import job_submit
from jobs.errors import JobConflict
from jobs.models import ExecutionLog, Job, JobDependency
from tests.factories import make_spec


def row_counts() -> tuple[int, ...]:
    return tuple(m.objects.count() for m in (Job, JobDependency, ExecutionLog))


@pytest.fixture
def parents(job_factory: Any) -> list[str]:
    return [str(job_factory().id), str(job_factory().id)]


@pytest.fixture
def body(parents: list[str]) -> dict[str, Any]:
    return {
        "type": "noop",
        "priority": "high",
        "payload": {"seconds": 0, "note": {"a": [1, 2]}},
        "resource_requirements": {"cpu_units": 2, "memory_mb": 256},
        "depends_on": parents,
        "max_attempts": 5,
        "timeout_seconds": 120,
        "idempotency_key": "order-42",
    }


@pytest.mark.django_db
def test_the_same_key_with_the_same_request_returns_the_first_job_with_200(
    api: APIClient, body: dict[str, Any]
) -> None:
    first = api.post("/jobs/", body, format="json")
    assert first.status_code == 201, first.content
    before = row_counts()

    again = api.post("/jobs/", body, format="json")

    assert again.status_code == 200, again.content
    assert again.json()["id"] == first.json()["id"]
    assert row_counts() == before


@pytest.mark.django_db
def test_the_same_request_in_another_spelling_is_the_same_request(
    api: APIClient, parents: list[str]
) -> None:
    """Defaults spelled out, parents in another order, keys of the payload reordered."""
    first = api.post(
        "/jobs/",
        {
            "type": "noop",
            "payload": {"a": 1, "b": 2},
            "depends_on": parents,
            "idempotency_key": "k",
        },
        format="json",
    )
    again = api.post(
        "/jobs/",
        {
            "type": "noop",
            "priority": "normal",
            "payload": {"b": 2, "a": 1},
            "resource_requirements": {"cpu_units": 1, "memory_mb": 128},
            "depends_on": parents[::-1],
            "idempotency_key": "k",
        },
        format="json",
    )
    assert (first.status_code, again.status_code) == (201, 200), again.content
    assert again.json()["id"] == first.json()["id"]


CHANGES = [
    ("type", {"type": "fail"}),
    ("priority", {"priority": "low"}),
    ("payload", {"payload": {"seconds": 1}}),
    # Equal in Python (True == 1), different JSON: still another request.
    ("payload", {"payload": {"seconds": 0, "note": {"a": [True, 2]}}}),
    ("resource_requirements", {"resource_requirements": {"cpu_units": 1, "memory_mb": 256}}),
    ("depends_on", {"depends_on": []}),
    ("max_attempts", {"max_attempts": 4}),
    ("timeout_seconds", {"timeout_seconds": 60}),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "change"), CHANGES, ids=[str(c[1]) for c in CHANGES])
def test_the_same_key_with_a_different_request_is_a_409_naming_the_key_and_the_first_job(
    api: APIClient, body: dict[str, Any], field: str, change: dict[str, Any]
) -> None:
    first = api.post("/jobs/", body, format="json")
    assert first.status_code == 201, first.content
    stored = Job.objects.values().get(id=first.json()["id"])
    before = row_counts()

    response = api.post("/jobs/", {**body, **change}, format="json")

    assert response.status_code == 409, response.content
    answer = response.json()
    assert answer["job_id"] == first.json()["id"]
    [message] = answer["idempotency_key"]
    assert "order-42" in message
    assert field in message
    assert row_counts() == before
    assert Job.objects.values().get(id=first.json()["id"]) == stored


@pytest.mark.django_db
def test_the_schema_documents_the_conflict(anon_api: APIClient) -> None:
    schema = anon_api.get("/api/schema/?format=json").json()
    create = schema["paths"]["/jobs/"]["post"]
    assert "409" in create["responses"]
    assert "idempotency_key" in create["responses"]["409"]["description"]


# --- the race: two requests with one key, the second inserting while the first commits ------


def waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return bool(cursor.fetchone()[0])


def submit_racing(user: Any, first: dict[str, Any], second: dict[str, Any]) -> tuple[Job, Any]:
    """Store ``first`` in a transaction that stays open until ``second``'s insert waits on the
    unique index behind it (so ``second`` passed the look-up before the first row existed for
    it); then commit. Returns the first job and what ``job_submit(second)`` returned or
    raised."""
    inserted, release = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def hold_first() -> None:
        try:
            with transaction.atomic():
                outcome["first"], _ = job_submit(owner=user, spec=make_spec(**first))
                inserted.set()
                assert release.wait(timeout=60)
        finally:
            connection.close()

    def submit_second() -> None:
        try:
            outcome["second"] = job_submit(owner=user, spec=make_spec(**second))
        except Exception as exc:
            outcome["second"] = exc
        finally:
            connection.close()

    holder = threading.Thread(target=hold_first)
    holder.start()
    assert inserted.wait(timeout=60)
    racer = threading.Thread(target=submit_second)
    racer.start()
    for _ in range(6000):  # a hang guard, not a timing assertion
        if waiting_on_a_lock() or not racer.is_alive():
            break
        threading.Event().wait(0.01)
    release.set()
    holder.join(timeout=60)
    racer.join(timeout=60)
    assert not holder.is_alive() and not racer.is_alive()
    return outcome["first"], outcome["second"]


@pytest.mark.django_db(transaction=True)
def test_a_racing_request_with_the_same_key_and_request_gets_the_first_job(user: Any) -> None:
    spec = {"payload": {"n": 1}, "idempotency_key": "race"}

    first, second = submit_racing(user, spec, spec)

    assert second == (first, False)
    assert Job.objects.filter(idempotency_key="race").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_racing_request_with_the_same_key_and_another_request_is_a_conflict(
    user: Any,
) -> None:
    first, second = submit_racing(
        user,
        {"payload": {"n": 1}, "idempotency_key": "race"},
        {"payload": {"n": 2}, "idempotency_key": "race"},
    )

    assert isinstance(second, JobConflict), second
    assert second.extra == {"job_id": str(first.id)}
    assert "payload" in second.errors["idempotency_key"][0]
    assert Job.objects.filter(idempotency_key="race").count() == 1
