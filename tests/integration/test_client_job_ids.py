"""A client may choose its job's id (the django.tasks backend returns it before the job is
sent, on commit) and keep its exact priority within a level (``priority_rank``).

The id is the client's promise of one job: the same id with the same idempotency key and
request answers the first job; an id another job already has is a 409 naming ``id``.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from rest_framework.test import APIClient

from jobs.models import Job


def body(**extra: Any) -> dict[str, Any]:
    return {"type": "noop", "payload": {"seconds": 0}, **extra}


@pytest.mark.django_db
def test_a_job_gets_the_id_and_the_rank_its_client_chose(api: APIClient) -> None:
    job_id = str(uuid.uuid4())
    answer = api.post("/jobs/", body(id=job_id, priority_rank=-37), format="json")
    assert answer.status_code == 201, answer.content
    assert answer.json()["id"] == job_id and answer.json()["priority_rank"] == -37
    assert Job.objects.get(id=job_id).priority_rank == -37
    assert api.get(f"/jobs/{job_id}").json()["priority_rank"] == -37


@pytest.mark.django_db
def test_the_same_id_and_key_again_answer_the_first_job(api: APIClient) -> None:
    job_id = str(uuid.uuid4())
    sent = body(id=job_id, idempotency_key=job_id, priority_rank=5)
    assert api.post("/jobs/", sent, format="json").status_code == 201
    again = api.post("/jobs/", sent, format="json")
    assert again.status_code == 200 and again.json()["id"] == job_id
    assert Job.objects.count() == 1
    other_rank = api.post("/jobs/", {**sent, "priority_rank": 6}, format="json")
    assert other_rank.status_code == 409 and "priority_rank" in str(other_rank.json())


@pytest.mark.django_db
def test_an_id_another_job_has_is_a_409_naming_id(api: APIClient, staff_api: APIClient) -> None:
    job_id = str(uuid.uuid4())
    assert api.post("/jobs/", body(id=job_id), format="json").status_code == 201
    for client in (api, staff_api):  # the owner's own job or another owner's
        taken = client.post("/jobs/", body(id=job_id), format="json")
        assert taken.status_code == 409, taken.content
        assert "id" in taken.json()
    assert Job.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"), [("id", "not-a-uuid"), ("priority_rank", 101), ("priority_rank", "1")]
)
def test_a_bad_id_or_rank_is_a_400_naming_the_field(api: APIClient, field: str, value: Any) -> None:
    answer = api.post("/jobs/", body(**{field: value}), format="json")
    assert answer.status_code == 400 and field in answer.json(), answer.content


@pytest.mark.django_db
def test_a_batch_job_takes_neither_an_id_nor_a_rank(api: APIClient) -> None:
    for field, value in (("id", str(uuid.uuid4())), ("priority_rank", 3)):
        answer = api.post("/jobs/batch/", {"jobs": [body(**{field: value})]}, format="json")
        assert answer.status_code == 400, answer.content
        assert field in str(answer.json())
