"""The 1,000,000-job table of ``test_console_scale``: written by PostgreSQL itself
(``INSERT ... SELECT generate_series``), shaped like a week of a busy platform.

Row ``g`` (1..N) is job ``md5('job' || g)::uuid`` (so a test knows an id without asking),
created ``g * 0.6`` seconds ago (a week for a million), owned by one of three users, of one
of eight types and four priorities; 85 % completed, 5 % failed (each with its dead letter), 3 %
cancelled and the rest pending, retrying, queued or running. Every fifth job has a log line;
a hundred schedules have fired some jobs.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

# LOAD_JOBS: N jobs in one statement; the status of row g follows g % 100 (see the module doc).
LOAD_JOBS = """
INSERT INTO jobs_job (
    id, owner_id, type, priority, status, payload, cpu_units, memory_mb, max_attempts, attempt,
    attempt_offset, timeout_seconds, idempotency_key, concurrency_key, batch_id, result, error,
    pending_parents, cancel_requested, worker, created_at, queued_at, started_at, completed_at,
    next_attempt_at, run_at, updated_at, schedule_id, scheduled_for)
SELECT md5('job' || g)::uuid, (%(owners)s::int[])[1 + g %% 3],
       (ARRAY['send_email','data_export','data_processing','report_generation',
              'noop','resize','index','notify'])[1 + g %% 8],
       CASE WHEN g %% 10 < 6 THEN 2 ELSE g %% 4 END,
       s.status, '{}'::jsonb, 1, 128, 3, CASE WHEN s.status = 'pending' THEN 0 ELSE 1 END,
       0, 3600, NULL, '', NULL, NULL, '',
       CASE WHEN s.status = 'pending' AND g %% 7 = 0 THEN 1 ELSE 0 END, false, '',
       t.created, t.created + interval '1 second', t.started, t.finished,
       CASE WHEN s.status = 'retrying' THEN t.created + interval '1 hour' END, NULL,
       coalesce(t.finished, t.created), NULL, NULL
FROM generate_series(%(first)s::int, %(last)s::int) AS g
CROSS JOIN LATERAL (SELECT CASE
        WHEN g %% 100 < 85 THEN 'completed' WHEN g %% 100 < 90 THEN 'failed'
        WHEN g %% 100 < 93 THEN 'cancelled' WHEN g %% 100 < 97 THEN 'pending'
        WHEN g %% 100 < 98 THEN 'retrying' WHEN g %% 100 < 99 THEN 'queued'
        ELSE 'running' END AS status) AS s
CROSS JOIN LATERAL (SELECT now() - g * interval '600 milliseconds' AS created) AS c
CROSS JOIN LATERAL (SELECT c.created,
        CASE WHEN s.status IN ('completed', 'failed', 'running')
             THEN c.created + (g %% 13) * interval '100 milliseconds' END AS started,
        CASE WHEN s.status IN ('completed', 'failed', 'cancelled')
             THEN c.created + (g %% 13) * interval '100 milliseconds'
                  + (g %% 29) * interval '1 second' END AS finished) AS t
"""

# LOAD_DEAD_LETTERS: the open dead letter of each failed job (g %% 100 in 85..89), five errors.
LOAD_DEAD_LETTERS = """
INSERT INTO jobs_deadletter (job_id, reason, error, traceback, attempts, created_at)
SELECT md5('job' || g)::uuid, 'max_attempts', 'boom ' || (g %% 5), '', 3,
       now() - g * interval '600 milliseconds'
FROM generate_series(%(first)s::int, %(last)s::int) AS g WHERE g %% 100 BETWEEN 85 AND 89
"""

# LOAD_LOGS: a log line for every fifth job.
LOAD_LOGS = """
INSERT INTO jobs_executionlog (job_id, attempt, level, message, from_status, to_status,
                               context, created_at)
SELECT md5('job' || g)::uuid, 1, 'info', 'loaded', 'running', 'completed', '{}'::jsonb,
       now() - g * interval '600 milliseconds'
FROM generate_series(%(first)s::int, %(last)s::int, 5) AS g
"""

# LOAD_SCHEDULES: a hundred schedules, each of which fired one of the jobs.
LOAD_SCHEDULES = """
INSERT INTO jobs_schedule (id, owner_id, name, cron, interval_seconds, timezone, job, overlap,
    catchup, catchup_limit, paused, next_fire_at, created_at, updated_at)
SELECT md5('schedule' || g)::uuid, (%(owners)s::int[])[1 + g %% 3], 'schedule ' || g, '',
       60 * g, 'UTC', '{"type": "noop"}'::jsonb, 'allow', 'latest', 10, g %% 10 = 0,
       CASE WHEN g %% 10 = 0 THEN NULL ELSE now() + g * interval '1 minute' END, now(), now()
FROM generate_series(1, 100) AS g;
INSERT INTO jobs_schedulefire (schedule_id, due_at, manual, outcome, detail, job_id, created_at)
SELECT md5('schedule' || g)::uuid, now() - g * interval '1 minute', false, 'fired', '',
       md5('job' || (g * 10))::uuid, now()
FROM generate_series(1, 100) AS g;
UPDATE jobs_job SET schedule_id = md5('schedule' || (g / 10))::uuid
FROM generate_series(10, 1000, 10) AS g WHERE id = md5('job' || g)::uuid
"""


def job_id(g: int) -> uuid.UUID:
    """The id of row ``g`` (as ``md5('job' || g)::uuid`` computes it)."""
    return uuid.UUID(hashlib.md5(f"job{g}".encode(), usedforsecurity=False).hexdigest())


def load(cursor: object, owners: Sequence[int], first: int, last: int) -> None:
    """Rows ``first``..``last`` of the jobs, with their dead letters and log lines."""
    params = {"owners": list(owners), "first": first, "last": last}
    execute = cursor.execute  # type: ignore[attr-defined]
    execute(LOAD_JOBS, params)
    execute(LOAD_DEAD_LETTERS, params)
    execute(LOAD_LOGS, params)


# SECONDARY_INDEXES: the indexes of these tables that no constraint owns (a bulk load drops
# them and builds them again after: one sorted build beats a million inserts into each).
SECONDARY_INDEXES = """
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
WHERE t.relname = ANY(%(tables)s)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
"""


@contextmanager
def indexes_built_after(cursor: Any, tables: Sequence[str]) -> Iterator[None]:
    """Drop the secondary indexes of ``tables`` for the body, then build them again (also
    when the body fails)."""
    cursor.execute(SECONDARY_INDEXES, {"tables": list(tables)})
    indexes = cursor.fetchall()
    for name, _ in indexes:
        cursor.execute(f"DROP INDEX {name}")
    try:
        yield
    finally:
        for _, definition in indexes:
            cursor.execute(definition)
