"""A job submitted over REST runs on a real Celery worker process."""

from __future__ import annotations

import pytest

from jobs.models import Job, JobStatus
from tests.conftest import wait_until

pytestmark = pytest.mark.e2e


def test_a_submitted_noop_job_completes_on_a_real_worker(platform, api):
    platform.start_worker()
    platform.start_scheduler()
    response = api.post("/jobs/", {"type": "noop", "priority": "high"}, format="json")
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]

    def done():
        return Job.objects.filter(id=job_id, status=JobStatus.COMPLETED).first()

    job = wait_until(done, message=f"job {job_id} to complete\n{platform.logs()}")
    assert job.result == {"ok": True, "slept": 0.0}
    assert job.attempt == 1
    assert job.worker.startswith("worker@")
    statuses = list(job.logs.exclude(to_status="").values_list("to_status", flat=True))
    assert statuses == ["pending", "queued", "running", "completed"]
