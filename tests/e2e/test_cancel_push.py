"""A cancel reaches a running handler at once: with the workers' fallback poll and the
scheduler's forced termination both pushed an hour away, only the message published with the
cancel request can stop the handler within the test's hang guard."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.models import ExecutionLog, Job, JobStatus
from tests.harness import wait_until

pytestmark = pytest.mark.e2e

AN_HOUR = "3600"


def test_a_cancel_is_pushed_to_the_worker_and_the_handler_stops(platform: Any, api: Any) -> None:
    platform.start_worker(DRACONIC_CANCEL_POLL_SECONDS=AN_HOUR)
    platform.start_scheduler(DRACONIC_CANCEL_GRACE_SECONDS=AN_HOUR)
    response = api.post("/jobs/", {"type": "noop", "payload": {"seconds": 600}}, format="json")
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    wait_until(
        lambda: Job.objects.filter(id=job_id, status=JobStatus.RUNNING).exists(),
        message=f"the job to start\n{platform.logs()}",
    )
    response = api.patch(f"/jobs/{job_id}/cancel")
    assert response.status_code == 200, response.content
    assert response.json()["cancel_requested"] is True
    wait_until(
        lambda: Job.objects.get(id=job_id).status == JobStatus.CANCELLED,
        timeout=60,
        message=f"the handler to stop\n{platform.logs()}",
    )
    messages = list(ExecutionLog.objects.filter(job_id=job_id).values_list("message", flat=True))
    assert "cancel requested: cancelled by its owner" in messages
    assert "attempt 1 stopped: cancelled" in messages
    worker_log = (platform.log_dir / "worker.log").read_text(errors="replace")
    assert f"cancel of {job_id}:1 delivered at once" in worker_log
