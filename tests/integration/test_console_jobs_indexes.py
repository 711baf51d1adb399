"""The jobs page's real queries use an index on a realistically shaped table (20,000 jobs,
almost all completed, from ``test_indexes.big_table``): each statement the page sends for a
filter is EXPLAINed, and none may scan ``jobs_job`` sequentially. The 1,000,000-job run is
``tests/integration/test_console_scale.py``."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from jobs.models import Job
from tests.integration.test_indexes import big_table, owners  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db

URL = "/dashboard/jobs/"


def _job_queries(client: Client, params: dict[str, str]) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(URL, params).status_code == 200
    return [q["sql"] for q in queries.captured_queries if '"jobs_job"' in q["sql"]]


def _plans(sqls: list[str]) -> list[str]:
    plans = []
    with connection.cursor() as cursor:
        for sql in sqls:
            cursor.execute(f"EXPLAIN {sql}")
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    return plans


def _filters(sample: Job) -> list[dict[str, str]]:
    cursor = f"{sample.created_at.isoformat()}~{sample.id}"
    return [
        {},
        {"after": cursor},
        {"before": cursor},
        {"status": "completed"},
        {"status": "completed", "after": cursor},
        {"status": "pending"},
        {"status": "running"},
        {"type": "noop", "after": cursor},
        {"priority": "high"},
        {"owner": "owner3"},
        {
            "created_from": "2000-01-01T00:00",
            "created_to": sample.created_at.strftime("%Y-%m-%dT%H:%M"),
        },
        {"q": str(sample.id), "search_in": "id"},
        {"q": str(sample.id), "search_in": "batch"},
        {"q": "some-key", "search_in": "idempotency_key"},
    ]


def test_every_jobs_page_query_of_an_operator_uses_an_index(big_table, django_user_model):  # noqa: F811
    staff = django_user_model.objects.create_user("op", is_staff=True)
    client = Client()
    client.force_login(staff)
    sample = Job.objects.order_by("created_at")[Job.objects.count() // 2]
    for params in _filters(sample):
        sqls = _job_queries(client, params)
        assert sqls, params
        for sql, plan in zip(sqls, _plans(sqls), strict=True):
            assert "Seq Scan on jobs_job" not in plan, (params, sql, plan)


def test_every_jobs_page_query_of_an_owner_uses_an_index(big_table):  # noqa: F811
    owner = big_table[0]
    client = Client()
    client.force_login(owner)
    sample = Job.objects.filter(owner=owner).order_by("created_at")[500]
    for params in _filters(sample):
        params.pop("owner", None)
        sqls = _job_queries(client, params)
        for sql, plan in zip(sqls, _plans(sqls), strict=True):
            assert "Seq Scan on jobs_job" not in plan, (params, sql, plan)
