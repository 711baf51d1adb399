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
