"""The whole story of a re-drive with real worker and scheduler processes: a parent fails its
only attempt, its child is cancelled for it; the operator re-drives the parent, which now
succeeds, and the child comes back and runs after it."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.models import Job, JobStatus
from tests.harness import wait_until

pytestmark = pytest.mark.e2e


def status_of(job_id: str) -> str:
    return Job.objects.get(id=job_id).status


def test_a_redriven_parent_brings_its_cancelled_child_back_and_both_complete(
    platform: Any, api: Any, staff_api: Any
) -> None:
    platform.start_worker()
    platform.start_scheduler()
    body = {
        "jobs": [
            {
                "key": "parent",
                "type": "fail",
                "payload": {"fail_attempts": 1},
                "max_attempts": 1,
            },
            {"key": "child", "type": "noop", "depends_on": ["parent"]},
        ]
    }
    response = api.post("/jobs/batch/", body, format="json")
    assert response.status_code == 201, response.content
    keys = response.json()["keys"]
    parent, child = keys["parent"], keys["child"]
    wait_until(
        lambda: (status_of(parent), status_of(child)) == (JobStatus.FAILED, JobStatus.CANCELLED),
        message=f"the parent to fail and the child to be cancelled\n{platform.logs()}",
    )
    response = staff_api.post(f"/admin/dlq/{parent}/retry")
    assert response.status_code == 200, response.content
    assert response.json()["revived"] == [child]
    wait_until(
        lambda: {status_of(parent), status_of(child)} == {JobStatus.COMPLETED},
        message=f"both to complete after the re-drive\n{platform.logs()}",
    )
    done_parent, done_child = Job.objects.get(id=parent), Job.objects.get(id=child)
    assert done_parent.result == {"ok": True, "failed_attempts": 1}
    assert done_parent.attempt == 2  # one failed attempt, one after the re-drive
    assert done_child.started_at is not None and done_parent.completed_at is not None
    assert done_child.started_at >= done_parent.completed_at
