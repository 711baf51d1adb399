"""The SQL statements that store new jobs, written out whole and named (the engine's own are
in ``jobs.engine.statements``, which says how they are written and run)."""

from __future__ import annotations

# The parents of a job being submitted, FOR SHARE: a parent cannot complete (which takes its
# row FOR UPDATE) until the new child's edges are committed, so its completion sees them.
LOCK_PARENTS = """
SELECT id::text AS id, status FROM jobs_job
WHERE id = ANY(%(job_ids)s::uuid[]) AND owner_id = %(owner_id)s
ORDER BY id FOR SHARE
"""

# One new job and its "submitted" log row, in one statement (one round trip, and in
# autocommit one transaction). Every column of jobs_job, in the model's order. A delayed job
# comes with run_at and the same next_attempt_at: admission's gate (statements.READY_ORDER).
INSERT_JOB = """
WITH new AS (
    INSERT INTO jobs_job
        (id, owner_id, type, priority, status, payload, cpu_units, memory_mb, max_attempts,
         attempt, attempt_offset, timeout_seconds, idempotency_key, concurrency_key, batch_id,
         result, error, pending_parents, cancel_requested, worker, created_at, queued_at,
         started_at, completed_at, next_attempt_at, run_at, updated_at, schedule_id,
         scheduled_for, priority_rank)
    VALUES
        (%(id)s, %(owner_id)s, %(type)s, %(priority)s, %(status)s, %(payload)s, %(cpu_units)s,
         %(memory_mb)s, %(max_attempts)s, %(attempt)s, %(attempt_offset)s, %(timeout_seconds)s,
         %(idempotency_key)s, %(concurrency_key)s, %(batch_id)s, %(result)s, %(error)s,
         %(pending_parents)s, %(cancel_requested)s, %(worker)s, %(created_at)s, %(queued_at)s,
         %(started_at)s, %(completed_at)s, %(next_attempt_at)s, %(run_at)s, %(updated_at)s,
         %(schedule_id)s, %(scheduled_for)s, %(priority_rank)s)
    RETURNING id, created_at)
INSERT INTO jobs_executionlog
    (job_id, attempt, level, message, from_status, to_status, context, created_at)
SELECT new.id, 0, 'info', 'submitted', '', 'pending', '{}', new.created_at FROM new
RETURNING id AS log_id, job_id, created_at AS logged_at
"""

# Many new jobs (a batch) and their log rows. ``VALUES %s`` is psycopg2's execute_values
# template: one multi-row VALUES list, in the column order of INSERT_JOB.
INSERT_JOBS = """
WITH new AS (
    INSERT INTO jobs_job
        (id, owner_id, type, priority, status, payload, cpu_units, memory_mb, max_attempts,
         attempt, attempt_offset, timeout_seconds, idempotency_key, concurrency_key, batch_id,
         result, error, pending_parents, cancel_requested, worker, created_at, queued_at,
         started_at, completed_at, next_attempt_at, run_at, updated_at, schedule_id,
         scheduled_for, priority_rank)
    VALUES %s
    RETURNING id, created_at)
INSERT INTO jobs_executionlog
    (job_id, attempt, level, message, from_status, to_status, context, created_at)
SELECT new.id, 0, 'info', 'submitted', '', 'pending', '{}', new.created_at FROM new
RETURNING id AS log_id, job_id, created_at AS logged_at
"""

# The edges of new jobs (execute_values template).
INSERT_EDGES = """
INSERT INTO jobs_jobdependency (job_id, depends_on_id) VALUES %s
"""
