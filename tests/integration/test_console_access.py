"""The console's one access rule (admin_api.access) and the audit record (admin_api.audit)."""

from __future__ import annotations

from typing import Any

import pytest

from admin_api import access, audit
from admin_api.models import OperatorAction
from jobs.models import ExecutionLog

pytestmark = pytest.mark.django_db


def test_roles_see_and_act_as_documented(
    user: Any, other_user: Any, staff_user: Any, viewer_user: Any, job_factory: Any
) -> None:
    mine = job_factory(owner=user)
    theirs = job_factory(owner=other_user)

    assert set(access.visible_jobs(user)) == {mine}
    assert set(access.visible_jobs(viewer_user)) == {mine, theirs}
    assert set(access.visible_jobs(staff_user)) == {mine, theirs}

    assert set(access.actionable_jobs(user)) == {mine}
    assert set(access.actionable_jobs(viewer_user)) == set()
    assert set(access.actionable_jobs(staff_user)) == {mine, theirs}

    assert access.may_act_on(user, mine) and not access.may_act_on(user, theirs)
    assert not access.may_act_on(viewer_user, mine)
    assert access.may_act_on(staff_user, theirs)
    assert [access.may_operate(u) for u in (user, viewer_user, staff_user)] == [False, False, True]


def test_record_writes_the_action_and_a_line_in_each_jobs_log(
    staff_user: Any, job_factory: Any
) -> None:
    jobs = [job_factory() for _ in range(3)]
    entry = audit.record(
        staff_user, "retry", "3 jobs matching status=failed", job_ids=[j.id for j in jobs]
    )

    assert OperatorAction.objects.get() == entry
    assert (entry.actor_name, entry.action, entry.count) == ("operator", "retry", 3)
    lines = ExecutionLog.objects.filter(context__operator_action=entry.id)
    assert sorted(str(line.job_id) for line in lines) == sorted(str(j.id) for j in jobs)
    assert all(line.message.startswith("operator operator: retry") for line in lines)


def test_record_rolls_back_with_the_change(staff_user: Any, job_factory: Any) -> None:
    from django.db import transaction

    job = job_factory()
    with pytest.raises(RuntimeError), transaction.atomic():
        audit.record(staff_user, "cancel", f"job {job.id}", job_ids=[job.id])
        raise RuntimeError("the change failed")
    assert not OperatorAction.objects.exists()
    assert not ExecutionLog.objects.filter(context__has_key="operator_action").exists()


def test_the_staff_apis_changes_are_audited_like_the_consoles(
    staff_api: Any, staff_user: Any, job_factory: Any
) -> None:
    """Re-drives (one, bulk) and limit rules changed through the staff API are operator
    actions too: each writes an OperatorAction, and a re-drive a line in its jobs' logs."""
    from tests.factories import dead_letter

    one, two, three = job_factory(), job_factory(type="fail"), job_factory(type="fail")
    for job in (one, two, three):
        dead_letter(job)
    assert staff_api.post(f"/admin/dlq/{one.id}/retry").status_code == 200
    bulk = staff_api.post("/admin/dlq/retry/", {"type": "fail"}, format="json")
    assert bulk.status_code == 200 and bulk.json()["requeued"] == 2
    created = staff_api.post(
        "/admin/limits/", {"key": "type:noop", "max_concurrency": 2}, format="json"
    )
    assert created.status_code == 201
    limit_id = created.json()["id"]
    assert (
        staff_api.patch(f"/admin/limits/{limit_id}", {"rate": "5/s"}, format="json").status_code
        == 200
    )
    assert staff_api.delete(f"/admin/limits/{limit_id}").status_code == 204

    actions = list(
        OperatorAction.objects.order_by("id").values_list("action", "count", "actor_name")
    )
    assert actions == [
        ("redrive", 1, "operator"),
        ("redrive", 2, "operator"),
        ("limit_create", 1, "operator"),
        ("limit_update", 1, "operator"),
        ("limit_delete", 1, "operator"),
    ]
    logged = ExecutionLog.objects.filter(context__action="redrive").values_list("job_id", flat=True)
    assert sorted(map(str, logged)) == sorted(str(j.id) for j in (one, two, three))


def test_a_staff_api_redrive_of_nothing_records_nothing(staff_api: Any, job_factory: Any) -> None:
    job = job_factory()
    assert staff_api.post(f"/admin/dlq/{job.id}/retry").status_code == 404
    assert staff_api.post("/admin/dlq/retry/", {"all": True}, format="json").json()["requeued"] == 0
    assert not OperatorAction.objects.exists()
