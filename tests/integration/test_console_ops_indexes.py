"""The operator pages' queries use their indexes on a realistically shaped history: the
statements each page really sends (captured while it renders) are EXPLAINed, and none scans a
whole table: the dead-letter groups and a group's letters use ``deadletter_group_idx``, the
queues' depths ``job_ready_idx``, the audit view's filters its ``operator_action_*_idx``."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from admin_api.models import OperatorAction
from jobs.engine.fingerprint import fingerprint
from jobs.models import DeadLetter, DeadLetterReason, Job, JobStatus

pytestmark = pytest.mark.django_db

JOBS = 20_000
OPEN = 300  # open letters; the other failed jobs' letters were re-driven long ago
READY = 200


@pytest.fixture
def history(user: Any, staff_user: Any) -> None:
    """20,000 jobs, mostly completed, some failed with letters (most closed), a few ready;
    20,000 operator actions, a few of them by a rare actor or of a rare action; then
    ANALYZE."""
    jobs, letters = [], []
    for i in range(JOBS):
        status = JobStatus.COMPLETED
        if i % 2 == 0:
            status = JobStatus.FAILED
        elif i % (JOBS // READY) == 1:
            status = JobStatus.PENDING
        jobs.append(Job(id=uuid.uuid4(), owner=user, type=f"t{i % 5}", status=status, attempt=1))
    Job.objects.bulk_create(jobs, batch_size=2000)
    failed = [j for j in jobs if j.status == JobStatus.FAILED]
    for n, job in enumerate(failed):
        error = f"ValueError: row {n} of group {n % 7}" if n % 3 else f"KeyError: 'k{n}'"
        letters.append(
            DeadLetter(
                job=job,
                reason=DeadLetterReason.MAX_ATTEMPTS,
                error=error,
                fingerprint=fingerprint(job.type, error),
                requeued_at=None if n < OPEN else "2026-01-01T00:00:00Z",
            )
        )
    DeadLetter.objects.bulk_create(letters, batch_size=2000)
    OperatorAction.objects.bulk_create(
        [
            OperatorAction(
                actor_name="rare" if n % 1000 == 0 else f"op{n % 10}",
                action="discard" if n % 500 == 7 else ("redrive", "pause_type")[n % 2],
                target=f"t {n}",
            )
            for n in range(20_000)
        ],
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        for table in ("jobs_job", "jobs_deadletter", "admin_api_operatoraction"):
            cursor.execute(f"ANALYZE {table}")


def _plans(client: Client, url: str, table: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    sent = [q["sql"] for q in captured.captured_queries if table in q["sql"]]
    assert sent, f"{url} sent nothing to {table}"
    plans = []
    with connection.cursor() as cursor:
        for sql in sent:
            cursor.execute(f"EXPLAIN {sql}")
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    return plans


@pytest.mark.usefixtures("history")
def test_the_operator_pages_queries_use_their_indexes(staff_user: Any) -> None:
    client = Client()
    client.force_login(staff_user)
    groups = _plans(client, "/dashboard/dead/", "jobs_deadletter")
    # A partial index of the open letters: deadletter_group_idx (index-only once vacuumed),
    # or the open-per-job one the planner may prefer on a fresh table.
    assert re.search(r"Index \w*\s*Scan (?:using|on) deadletter_\w+", groups[0]), groups[0]
    assert all("Seq Scan on jobs_deadletter" not in p for p in groups), groups
    some = DeadLetter.objects.filter(requeued_at__isnull=True).values_list(
        "fingerprint", flat=True
    )[0]
    letters = _plans(client, f"/dashboard/dead/{some}/", "jobs_deadletter")
    assert "deadletter_group_idx" in letters[0], letters[0]

    depths = _plans(client, "/dashboard/queues/", "jobs_job")
    assert all("Seq Scan on jobs_job" not in p for p in depths), depths
    assert any("job_ready_idx" in p for p in depths), depths

    for url, index in (
        # A rare actor or action: its index (a common one is found as fast walking the ids).
        ("/dashboard/audit/?actor=rare", "operator_action_actor_idx"),
        ("/dashboard/audit/?action=discard", "operator_action_action_idx"),
    ):
        plans = _plans(client, url, "admin_api_operatoraction")
        assert index in plans[0], plans[0]
    plain = _plans(client, "/dashboard/audit/", "admin_api_operatoraction")
    assert "admin_api_operatoraction_pkey" in plain[0], plain[0]
