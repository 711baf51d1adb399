"""``jobs.services``: code inside the deployment submits jobs through the same serializer as
``POST /jobs/``. The story: ``jobs.api.submit.job_submit`` called in-process stored an unknown
type and a bad payload, which only failed when run; the public in-process call now refuses
them with the REST API's own field errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework.exceptions import ValidationError

from jobs import services
from jobs.errors import JobValidationError
from jobs.models import Job, JobStatus, Priority

pytestmark = pytest.mark.django_db

BAD_BODIES = [
    pytest.param({"type": "no_such_type"}, id="unknown type"),
    pytest.param({"type": "send_email", "payload": {"subject": "s"}}, id="bad payload"),
    pytest.param({"type": "noop", "priority": "urgent", "colour": 1}, id="bad and unknown field"),
    pytest.param({"type": "noop", "payload": []}, id="payload not an object"),
    pytest.param({"type": "noop", "resource_requirements": {"cpu_units": 10**6}}, id="too big"),
]


def as_json(detail: Any) -> Any:
    return json.loads(json.dumps(detail))


@pytest.mark.parametrize("body", BAD_BODIES)
def test_the_in_process_submit_refuses_what_rest_refuses_with_the_same_errors(
    api: Any, user: Any, body: dict[str, Any]
) -> None:
    response = api.post("/jobs/", body, format="json")
    assert response.status_code == 400
    with pytest.raises(ValidationError) as refused:
        services.job_submit(owner=user, body=body)
    assert as_json(refused.value.detail) == response.json()
    assert not Job.objects.exists()


@pytest.mark.parametrize("body", BAD_BODIES)
def test_the_in_process_batch_refuses_what_rest_refuses_with_the_same_errors(
    api: Any, user: Any, body: dict[str, Any]
) -> None:
    jobs = [{"type": "noop"}, body]
    response = api.post("/jobs/batch/", {"jobs": jobs}, format="json")
    assert response.status_code == 400
    with pytest.raises(ValidationError) as refused:
        services.job_submit_batch(owner=user, jobs=jobs)
    assert as_json(refused.value.detail) == response.json()
    assert not Job.objects.exists()


def test_an_unknown_parent_is_the_same_service_error_as_for_rest(api: Any, user: Any) -> None:
    body = {"type": "noop", "depends_on": ["00000000-0000-0000-0000-000000000001"]}
    response = api.post("/jobs/", body, format="json")
    assert response.status_code == 400
    with pytest.raises(JobValidationError) as refused:
        services.job_submit(owner=user, body=body)
    assert "depends_on" in refused.value.errors and "depends_on" in response.json()


def test_a_valid_body_is_stored_with_the_same_defaults_as_by_rest(user: Any) -> None:
    job = services.job_submit(owner=user, body={"type": "noop", "payload": {"seconds": 0}})
    stored = Job.objects.get()
    assert (stored.id, stored.owner, stored.status) == (job.id, user, JobStatus.PENDING)
    assert (stored.cpu_units, stored.memory_mb, stored.priority) == (1, 128, Priority.NORMAL)
    again = services.job_submit(
        owner=user, body={"type": "noop", "idempotency_key": "k1", "payload": {}}
    )
    assert (
        services.job_submit(
            owner=user, body={"type": "noop", "idempotency_key": "k1", "payload": {}}
        ).id
        == again.id
    )
    graph = services.job_submit_batch(
        owner=user, jobs=[{"type": "noop", "key": "a"}, {"type": "noop", "depends_on": ["a"]}]
    )
    assert [j.pending_parents for j in graph] == [0, 1]
