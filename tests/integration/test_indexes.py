"""The hot queries use their indexes on a realistically shaped table: the dispatcher's ready
scan uses the partial ``job_ready_idx`` and a user's filtered list uses an owner index, never
a sequential scan of ``jobs_job``."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs.api.selectors import job_list
from jobs.api.views import Pagination
from jobs.engine import admission, prepared, statements
from jobs.models import Job, JobStatus

TOTAL = 20_000
PENDING = 250  # divides TOTAL, so exactly this many are ready
OWNERS = 10


@pytest.fixture
def owners(django_user_model: Any) -> list[Any]:
    return [django_user_model.objects.create_user(f"owner{i}") for i in range(OWNERS)]


@pytest.fixture
def big_table(owners: list[Any]) -> list[Any]:
    """20,000 jobs spread over the owners: almost all completed, a few hundred ready to run
    and a few waiting for parents or running, then ``ANALYZE`` so the planner knows."""
    start = timezone.now() - timedelta(days=30)
    jobs = []
    for i in range(TOTAL):
        if i % (TOTAL // PENDING) == 0:
            status, parents = JobStatus.PENDING, 0
        elif i % 997 == 0:
            status, parents = JobStatus.PENDING, 1
        elif i % 499 == 0:
            status, parents = JobStatus.RUNNING, 0
        else:
            status, parents = JobStatus.COMPLETED, 0
        jobs.append(
            Job(
                id=uuid.uuid4(),
                owner=owners[i % OWNERS],
                type="noop",
                priority=i % 4,
                status=status,
                pending_parents=parents,
                attempt=0 if status == JobStatus.PENDING else 1,
                payload={"n": i},
            )
        )
    Job.objects.bulk_create(jobs, batch_size=2000)
    # auto_now_add stamped them all "now"; spread them over a month like a real history.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Job._meta.db_table} SET created_at = %s + random() * interval '30 days'",
            [start],
        )
        cursor.execute(f"ANALYZE {Job._meta.db_table}")
    return owners


#: An index led by owner_id: ours (``job_owner_*_idx``) or the foreign key's own.
OWNER_INDEX = re.compile(
    r"(?:Index Scan using|Index Only Scan using|Bitmap Index Scan on) "
    r"(?:job_owner_\w+_idx|jobs_job_owner_id_\w+) "
)


def explain(sql: str, params: list[object]) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def ready_scans() -> list[str]:
    """The statements a pass really sends: its order of the ready jobs, then a page of them
    (EXECUTEs of prepared statements, explained below in the session that prepared them)."""
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        order = admission.ready_order()
        assert order, "the table has ready jobs"
        assert admission.ready_page(order[:100])
        transaction.set_rollback(True)
    sent = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("EXECUTE")]
    names = [prepared.prepare(s).name for s in (statements.READY_ORDER, statements.READY_PAGE)]
    assert [sql.split()[1] for sql in sent] == names  # the engine's own two statements
    return sent


@pytest.mark.django_db
@pytest.mark.usefixtures("big_table")
def test_index_scan_for_ready() -> None:
    assert Job.objects.filter(status=JobStatus.PENDING, pending_parents=0).count() == PENDING
    order, page = ready_scans()
    plan = explain(order, [])
    assert "job_ready_idx" in plan, plan
    assert "Seq Scan on jobs_job" not in plan, plan
    plan = explain(page, [])
    assert "jobs_job_pkey" in plan or "job_ready_idx" in plan, plan
    assert "Seq Scan on jobs_job" not in plan, plan


def job_queries(run: Any) -> list[str]:
    """The SQL that ``run()`` sends against ``jobs_job`` (as executed, parameters inlined)."""
    with CaptureQueriesContext(connection) as captured:
        run()
    return [q["sql"] for q in captured.captured_queries if 'FROM "jobs_job"' in q["sql"]]


@pytest.mark.django_db
@pytest.mark.parametrize("status", [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.COMPLETED])
def test_a_users_filtered_list_uses_an_owner_index(big_table: list[Any], status: str) -> None:
    """The list endpoint runs a COUNT and a page of rows; both go through an owner index."""
    owner = big_table[3]
    qs = job_list(user=owner, status=status)
    rows: list[Job] = []
    sqls = job_queries(lambda: (qs.count(), rows.extend(qs[: Pagination.page_size])))
    assert len(sqls) == 2
    for sql in sqls:
        plan = explain(sql, [])
        assert OWNER_INDEX.search(plan), plan
        assert "Seq Scan on jobs_job" not in plan, plan
    expected = Job.objects.filter(owner=owner, status=status).count()
    assert len(rows) == min(Pagination.page_size, expected)


@pytest.mark.django_db
@pytest.mark.usefixtures("big_table")
def test_index_scan_for_next_due() -> None:
    """The scheduler asks when the next job is due after every wake-up: one probe of the
    partial ``job_due_idx``, whatever the size of the history."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Job._meta.db_table} SET next_attempt_at = now() + random() * interval '1 day'"
            " WHERE status = 'pending'"
        )
        cursor.execute(f"ANALYZE {Job._meta.db_table}")
    plan = explain(statements.NEXT_DUE, [])
    assert "job_due_idx" in plan, plan
    assert "Seq Scan on jobs_job" not in plan, plan
