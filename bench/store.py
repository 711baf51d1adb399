"""The bench's own PostgreSQL database and Redis database: create, migrate, reset, fill, and
read the figures back. Nothing here touches any other database."""

from __future__ import annotations

import subprocess
import sys
from typing import Any
from urllib.parse import urlparse, urlunparse

import psycopg2
import redis

from bench.config import Options, process_env
from tests.harness import ROOT

REDIS_MARKER = "bench:owner"


def recreate_database(opts: Options) -> None:
    """Drop the bench's database if it exists, then create and migrate it (platform tables
    plus the baseline's)."""
    url = urlparse(opts.database_url)
    admin = urlunparse(url._replace(path="/postgres"))
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{opts.database_name}" WITH (FORCE)')
    finally:
        conn.close()
    env = process_env(opts, settings_module="bench.baseline.settings")
    for argv in (["waitforservices"], ["migrate", "--noinput", "-v", "0"]):
        subprocess.run([sys.executable, "manage.py", *argv], cwd=ROOT, env=env, check=True)


def drop_database(opts: Options) -> None:
    from django.db import connections

    connections.close_all()
    url = urlparse(opts.database_url)
    conn = psycopg2.connect(urlunparse(url._replace(path="/postgres")))
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{opts.database_name}" WITH (FORCE)')
    finally:
        conn.close()


def claim_redis(opts: Options) -> redis.Redis:
    """The bench's Redis database, refused if it holds keys of someone else."""
    client = redis.Redis.from_url(opts.redis_url)
    if client.dbsize() and not client.exists(REDIS_MARKER):
        raise SystemExit(
            f"{opts.redis_url} holds data that is not the bench's; pass --redis-url with an "
            "empty database (the bench empties it between benchmarks)"
        )
    client.set(REDIS_MARKER, 1)
    return client


def reset_redis(client: redis.Redis) -> None:
    """Empty the bench's own Redis database (broker queues, ledger, throttles) between phases."""
    client.flushdb()
    client.set(REDIS_MARKER, 1)


def sql(query: str, params: Any = None) -> list[tuple[Any, ...]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def settle_leftovers() -> int:
    """Mark every unfinished job completed, so that the next phase's processes find no work.
    A bench fixture, not a platform state change (this database is the bench's)."""
    rows = sql(
        "UPDATE jobs_job SET status = 'completed', pending_parents = 0, completed_at = now() "
        "WHERE status NOT IN ('completed', 'failed', 'cancelled') RETURNING 1"
    )
    return len(rows)


_FILL = """
INSERT INTO jobs_job (id, owner_id, type, priority, status, payload, cpu_units, memory_mb,
    max_attempts, attempt, attempt_offset, timeout_seconds, idempotency_key, batch_id, result,
    error, pending_parents, cancel_requested, worker, created_at, queued_at, started_at,
    completed_at, next_attempt_at, updated_at)
SELECT gen_random_uuid(), %(owner)s, 'noop', g %% 4,
    CASE WHEN g %% 100 = 0 THEN 'failed' WHEN g %% 100 = 1 THEN 'cancelled' ELSE 'completed' END,
    '{"n": 1}'::jsonb, 1, 128, 3, 1, 0, 3600, NULL, NULL, '{"ok": true, "slept": 0}'::jsonb,
    '', 0, false, 'bench-fill', t, t, t, t, NULL, t
FROM generate_series(%(start)s, %(stop)s) AS g,
     LATERAL (SELECT now() - interval '3 days' + g * interval '100 ms' AS t) AS times
"""


def fill_jobs(owner_id: int, total: int) -> int:
    """Add finished jobs until the table holds ``total`` rows; returns how many were added."""
    have: int
    (have,) = sql("SELECT count(*) FROM jobs_job")[0]
    missing = total - have
    if missing <= 0:
        return 0
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO off")
        for start in range(have, total, 200_000):
            stop = min(start + 200_000, total) - 1
            cursor.execute(_FILL, {"owner": owner_id, "start": start, "stop": stop})
        cursor.execute("SET synchronous_commit TO on")
        cursor.execute("VACUUM ANALYZE jobs_job")
    return missing


def insert_ready(owner_id: int, count: int, *, keys: int = 0) -> None:
    """``count`` pending jobs, all ready (no parents): the dispatcher's work. With ``keys``,
    their concurrency keys are ``tenant:0`` ... ``tenant:<keys - 1>``, in turn."""
    sql(
        "INSERT INTO jobs_job (id, owner_id, type, priority, status, payload, cpu_units, memory_mb,"
        " max_attempts, attempt, attempt_offset, timeout_seconds, error, pending_parents,"
        " cancel_requested, worker, created_at, updated_at, concurrency_key)"
        " SELECT gen_random_uuid(), %s, 'noop', 2, 'pending', '{}'::jsonb, 1, 128, 3, 0, 0, 3600,"
        " '', 0, false, '', now() + g * interval '1 us', now(),"
        " CASE WHEN %s > 0 THEN 'tenant:' || (g %% %s) ELSE '' END"
        " FROM generate_series(1, %s) g",
        [owner_id, keys, max(keys, 1), count],
    )


def explain(query: str, params: Any = None, *, analyze: bool = True) -> str:
    options = "ANALYZE, BUFFERS" if analyze else "COSTS"
    return "\n".join(row[0] for row in sql(f"EXPLAIN ({options}) {query}", params))
