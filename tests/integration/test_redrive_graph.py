"""Re-drive revives the graph: re-driving a dead-lettered job brings back the descendants its
failure cancelled (as Airflow's "clear with downstream"), never those a person cancelled or
that another failed parent still blocks; ``descendants=False`` keeps them cancelled."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.engine.cancel import job_cancel
from jobs.engine.deadletter import dead_letter_redrive
from jobs.models import ExecutionLog, Job, JobStatus
from tests.factories import move_to

S = JobStatus


def status(job: Job) -> str:
    return Job.objects.get(id=job.id).status


@pytest.mark.django_db
def test_a_redrive_brings_back_the_chain_its_failure_cancelled(job_factory: Any) -> None:
    a = job_factory()
    b = job_factory(depends_on=[a])
    c = job_factory(depends_on=[b])
    move_to(a, S.FAILED)
    assert (status(b), status(c)) == (S.CANCELLED, S.CANCELLED)
    redrive = dead_letter_redrive(job_ids=[a.id])
    assert redrive.requeued == [a.id]
    assert sorted(redrive.revived) == sorted([b.id, c.id])
    assert (status(a), status(b), status(c)) == (S.PENDING, S.PENDING, S.PENDING)
    log = ExecutionLog.objects.filter(job=c).latest("id")
    assert (log.from_status, log.to_status) == (S.CANCELLED, S.PENDING)
    assert "re-driven" in log.message
    # They wait for their parents again: b for a, c for b.
    counters = dict(Job.objects.filter(id__in=[b.id, c.id]).values_list("id", "pending_parents"))
    assert counters == {b.id: 1, c.id: 1}


@pytest.mark.django_db
def test_a_child_its_owner_cancelled_stays_cancelled(job_factory: Any) -> None:
    a = job_factory()
    mine = job_factory(depends_on=[a])
    job_cancel(job=mine)
    move_to(a, S.FAILED)
    assert dead_letter_redrive(job_ids=[a.id]).revived == []
    assert status(mine) == S.CANCELLED


@pytest.mark.django_db
def test_a_child_that_another_failed_parent_blocks_stays_cancelled(job_factory: Any) -> None:
    a, other = job_factory(), job_factory()
    both = job_factory(depends_on=[a, other])
    only_a = job_factory(depends_on=[a])
    move_to(other, S.FAILED)
    move_to(a, S.FAILED)
    redrive = dead_letter_redrive(job_ids=[a.id])
    assert redrive.revived == [only_a.id]
    assert status(both) == S.CANCELLED  # it would wait for `other` forever
    # Re-driving the other parent too brings it back.
    assert dead_letter_redrive(job_ids=[other.id]).revived == [both.id]


@pytest.mark.django_db
def test_without_descendants_the_cancelled_children_stay_cancelled(job_factory: Any) -> None:
    a = job_factory()
    b = job_factory(depends_on=[a])
    move_to(a, S.FAILED)
    redrive = dead_letter_redrive(job_ids=[a.id], descendants=False)
    assert (redrive.requeued, redrive.revived) == ([a.id], [])
    assert (status(a), status(b)) == (S.PENDING, S.CANCELLED)


@pytest.mark.django_db
def test_a_job_not_in_the_dlq_is_neither_requeued_nor_revives_anything(job_factory: Any) -> None:
    a = job_factory()
    b = job_factory(depends_on=[a])
    job_cancel(job=a)  # cancels b with it
    redrive = dead_letter_redrive(job_ids=[a.id])
    assert (redrive.requeued, redrive.revived) == ([], [])
    assert status(b) == S.CANCELLED


@pytest.mark.django_db
def test_the_redrive_endpoint_lists_the_revived_and_can_leave_them(
    staff_api: Any, job_factory: Any
) -> None:
    a = job_factory()
    b = job_factory(depends_on=[a])
    c = job_factory()
    d = job_factory(depends_on=[c])
    move_to(a, S.FAILED)
    move_to(c, S.FAILED)
    response = staff_api.post(f"/admin/dlq/{a.id}/retry", {}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"job_id": str(a.id), "status": "pending", "revived": [str(b.id)]}
    kept = staff_api.post(f"/admin/dlq/{c.id}/retry", {"descendants": False}, format="json")
    assert kept.status_code == 200, kept.content
    assert kept.json()["revived"] == []
    assert (status(c), status(d)) == (S.PENDING, S.CANCELLED)


@pytest.mark.django_db
def test_the_redrive_option_must_be_a_boolean(staff_api: Any, job_factory: Any) -> None:
    a = job_factory()
    move_to(a, S.FAILED)
    response = staff_api.post(f"/admin/dlq/{a.id}/retry", {"descendants": "no"}, format="json")
    assert response.status_code == 400, response.content
    assert "descendants" in response.json()
    assert status(a) == S.FAILED
