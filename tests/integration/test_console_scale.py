"""The console on a big table: with 1,000,000 jobs (and their dead letters, log lines and
schedules), each console page, and each action's confirmation (the POST that counts what
it would touch), answers in as many queries as on a table of 2,000, and every SELECT it sends
to jobs_job, jobs_executionlog or jobs_deadletter, EXPLAINed as sent, reads each of those
tables through an index (an Index, Index Only or Bitmap Index Scan; never a Seq Scan), and
every page that reads them does so at least once.

The table is loaded once for the module by PostgreSQL itself (``scale_data``), committed
(the tests read it inside their own rolled-back transactions) and truncated at the end.
A page is one line of ``PAGES``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs.rollups.models import Grain
from jobs.rollups.sweep import ROLLUP_BUCKETS, floor_to
from tests.integration import scale_data
from tests.integration.scale_data import job_id

# The load (about a minute here, more on a busy machine) counts in the first test's time.
pytestmark = [pytest.mark.scale, pytest.mark.timeout(900)]

N = 1_000_000
SMALL = 2_000
#: The tables no console query may scan sequentially.
BIG_TABLES = frozenset({"jobs_job", "jobs_executionlog", "jobs_deadletter"})

#: (name, URL) of each console page. Jobs 300 (completed) and 93 (pending, waiting for its
#: capacity) belong to the owner (row g is owned by owners[g % 3]).
PAGES: list[tuple[str, str]] = [
    ("index", "/dashboard/"),
    ("stats", "/dashboard/stats.json"),
    ("job-completed", f"/dashboard/jobs/{job_id(300)}/"),
    ("job-pending", f"/dashboard/jobs/{job_id(93)}/"),
    ("charts", "/dashboard/charts/?range=week"),
    ("schedules", "/dashboard/schedules/"),
    # The jobs page (cjobs): newest, by an ended and a live status, type and priority, a
    # search, a time range.
    ("jobs", "/dashboard/jobs/"),
    ("jobs-failed", "/dashboard/jobs/?status=failed"),
    ("jobs-pending", "/dashboard/jobs/?status=pending"),
    ("jobs-type-priority", "/dashboard/jobs/?type=resize&priority=high"),
    ("jobs-search", f"/dashboard/jobs/?q={job_id(300)}&search_in=id"),
    ("jobs-batch", f"/dashboard/jobs/?q={job_id(300)}&search_in=batch"),
    (
        "jobs-range",
        "/dashboard/jobs/?created_from=2000-01-01T00:00&created_to="
        + (timezone.now() - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"),
    ),
    ("dead", "/dashboard/dead/"),
    # The loaded letters have no fingerprint: one group, "-", of 50,000.
    ("dead-group", "/dashboard/dead/-/"),
    ("queues", "/dashboard/queues/"),
    ("audit", "/dashboard/audit/"),
    ("job-logs", f"/dashboard/jobs/{job_id(300)}/logs.json?since=0"),
    ("job-clone", f"/dashboard/jobs/{job_id(300)}/clone/"),
]
#: (name, URL, form) of the confirmations: the first POST of an action, which counts what it
#: would touch (all that match a filter, a dead-letter group, a type's waiting jobs).
CONFIRMATIONS: list[tuple[str, str, dict[str, str]]] = [
    (
        "confirm-jobs-all-failed",
        "/dashboard/jobs/action/",
        {"action": "redrive", "scope": "all", "status": "failed", "type": "resize"},
    ),
    ("confirm-jobs-all", "/dashboard/jobs/action/", {"action": "cancel", "scope": "all"}),
    ("confirm-dead-group", "/dashboard/dead/redrive/", {"group": "-"}),
    ("confirm-pause-type", "/dashboard/queues/pause/", {"job_type": "resize"}),
    ("confirm-pause-priority", "/dashboard/queues/pause/", {"priority": "high"}),
]
#: Every request measured: (name, URL, form or None for a GET).
REQUESTS: list[tuple[str, str, dict[str, str] | None]] = [
    *((name, url, None) for name, url in PAGES),
    *CONFIRMATIONS,
]
#: The requests that read no big table (the charts read the rollup, the audit its own table).
READS_NO_BIG_TABLE = frozenset({"charts", "audit"})
#: Who looks: an operator, an on-call viewer, and an ordinary user (the owner of a third of the
#: jobs); the last two may be refused a page (403), but in as few queries on both tables.
WHO = ("operator", "viewer", "owner")


@dataclass
class Scale:
    clients: dict[str, Client]
    #: (who, page name) -> (status, queries) on the small table
    small: dict[tuple[str, str], tuple[int, int]]


def _queries(client: Client, url: str, form: dict[str, str] | None) -> tuple[int, list[str]]:
    """The page's status and the statements it sent (a GET, or a POST of ``form``)."""

    def send() -> Any:
        return client.get(url) if form is None else client.post(url, form)

    send()  # the same warm-up on both tables (session, user)
    with CaptureQueriesContext(connection) as captured:
        response = send()
    return response.status_code, [q["sql"] for q in captured.captured_queries]


def _users() -> dict[str, Any]:
    model = get_user_model()
    owners = [model.objects.create_user(f"scale-owner{i}") for i in range(3)]
    operator = model.objects.create_user("scale-operator", is_staff=True)
    viewer = model.objects.create_user("scale-viewer")
    viewer.user_permissions.add(Permission.objects.get(codename="view_everything"))
    return {"operator": operator, "viewer": viewer, "owner": owners[0], "owners": owners}


def _truncate() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE jobs_job, jobs_executionlog, jobs_deadletter, jobs_schedule,"
            " jobs_schedulefire, jobs_jobdependency CASCADE"
        )
    get_user_model().objects.filter(username__startswith="scale-").delete()


def _load() -> Scale:
    users = _users()
    owner_ids = [u.id for u in users["owners"]]
    clients = {}
    for who in WHO:
        clients[who] = Client()
        clients[who].force_login(users[who])
    with connection.cursor() as cursor:
        scale_data.load(cursor, owner_ids, 1, SMALL)
        cursor.execute(scale_data.LOAD_SCHEDULES, {"owners": owner_ids})
        cursor.execute("ANALYZE jobs_job, jobs_executionlog, jobs_deadletter")
    small = {}
    for who in WHO:
        for name, url, form in REQUESTS:
            status, queries = _queries(clients[who], url, form)
            small[(who, name)] = (status, len(queries))
    with connection.cursor() as cursor:
        with scale_data.indexes_built_after(cursor, sorted(BIG_TABLES)):
            scale_data.load(cursor, owner_ids, SMALL + 1, N)
        # What autovacuum does to a table this size: statistics and the visibility map.
        cursor.execute("VACUUM ANALYZE jobs_job, jobs_executionlog, jobs_deadletter")
    return Scale(clients, small)


@pytest.fixture(scope="module")
def scale(django_db_setup: None, django_db_blocker: Any) -> Iterator[Scale]:
    """The big table, committed, for the module; emptied afterwards (also after a failure)."""
    with django_db_blocker.unblock():
        try:
            loaded = _load()
        except BaseException:
            _truncate()
            raise
    try:
        yield loaded
    finally:
        with django_db_blocker.unblock():
            _truncate()


def _plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


#: The plan nodes that read a table through an index.
INDEX_SCANS = frozenset({"Index Scan", "Index Only Scan", "Bitmap Index Scan"})


def big_table_reads(sql: str, params: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """How the plan of ``sql`` (EXPLAIN: the plan, not a run) reaches each big table:
    ``(node type, table)``, with the index's table for an index node (a Bitmap Heap Scan's
    index is its child's)."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        (plan,) = cursor.fetchone()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    found = []
    for node in _plan_nodes(plan[0]["Plan"]):
        table = node.get("Relation Name") or _index_table(node.get("Index Name"))
        if table in BIG_TABLES and node["Node Type"] != "Bitmap Heap Scan":
            found.append((node["Node Type"], table))
    return found


def _index_table(index: str | None) -> str | None:
    if index is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indrelid::regclass::text FROM pg_index WHERE indexrelid = %s::regclass",
            [index],
        )
        row = cursor.fetchone()
    return None if row is None else str(row[0])


def sequential_scans(sql: str, params: dict[str, Any] | None = None) -> list[str]:
    """The big tables ``sql`` reads with a Seq Scan."""
    return [table for kind, table in big_table_reads(sql, params) if kind == "Seq Scan"]


def _reads_big_tables(sql: str) -> bool:
    head = sql.lstrip().split(None, 1)[0].upper()
    return head in {"SELECT", "WITH"} and any(t in sql for t in BIG_TABLES)


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize(("name", "url", "form"), REQUESTS)
def test_each_page_answers_in_constant_queries_that_use_indexes(scale, db, who, name, url, form):
    """The statements the page really sent (as sent: Django binds the values client-side),
    each EXPLAINed: every big table each reads, it reads through an index."""
    status, queries = _queries(scale.clients[who], url, form)
    # An owner is refused the platform-wide pages, a viewer the clone form and the actions.
    assert status == 200 or (who != "operator" and status == 403), status
    assert (status, len(queries)) == scale.small[(who, name)], "\n".join(queries)
    reads = {sql: big_table_reads(sql) for sql in queries if _reads_big_tables(sql)}
    not_indexed = {sql: r for sql, r in reads.items() if any(k not in INDEX_SCANS for k, _ in r)}
    assert not_indexed == {}
    if status == 200 and name not in READS_NO_BIG_TABLE:
        indexed = [read for found in reads.values() for read in found]
        assert indexed, f"{name} read no big table through an index: {queries}"


def test_the_table_really_is_big(scale, db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'jobs_job'")
        assert cursor.fetchone()[0] >= N * 0.95


def test_the_rollup_sweep_reads_a_bucket_through_the_indexes(scale, db):
    hour = floor_to(timezone.now() - timedelta(hours=5), Grain.HOUR)
    params = {"grain": "hour", "unit": "hour", "lo": hour, "hi": hour + timedelta(hours=1)}
    assert sequential_scans(ROLLUP_BUCKETS, params) == []
