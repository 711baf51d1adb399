"""Every SQL statement the engine runs, written out whole and named.

Read this file as the engine's data contract. Each statement says what it locks and why. The
state changes share one shape: ``old`` locks the rows that are in a status the move starts
from (in id order, like every multi-row lock here, so two changes over the same jobs cannot
deadlock) and remembers that status; ``moved`` is the compare-and-swap; ``log`` writes the
job's ExecutionLog row in the same statement. A change that matches no row did not happen:
another process got there first. Which moves are legal is ``transitions.ALLOWED``; each
statement below is one of them (``transitions`` checks that at import).

Parameters are named (``%(job_id)s``); a cast written right after one (``::uuid[]``) is also
applied when ``prepared`` sends the value. Results are read by column name.
"""

from __future__ import annotations

# --- admission ---------------------------------------------------------------------------

# The ready jobs in the admission policy's order (``admission`` says it in words), read once
# per pass (at most ``limit``): by effective priority (the priority, one up for each
# aging_seconds waited; -1 is starving, aged past critical; aging_seconds 0 makes every job
# starving), then by turn (the job's place in the line of its owner and concurrency key at
# that effective priority: a round-robin between the lines), then by priority_rank (a
# client's exact priority within its level, larger sooner: the django.tasks backend's
# -100..100), then oldest; a line is in the same order. The candidates come
# from job_ready_idx and the window runs over them all; locks nothing (READY_PAGE locks).
# A paused job type or priority (jobs_pause, a handful of rows) is left out of the candidates,
# so its backlog blocks nothing behind it; READY_PAGE checks again under the lock.
# Only the first ``turns`` of each line are read (admission.LINE_SLACK), so one line's
# backlog that a limit holds back cannot fill the whole window.
# A job waits since the later of its submit and its time: next_attempt_at, or its run_at once
# an admission cleared that (a handed-back or re-driven job keeps the run_at it waited for);
# a run_at before the submit is no head start.
# The jobs of held types (an external pool's types while no worker of the pool is live,
# jobs.pools.services.held_types) are left out: they wait, and hold no place in the window.
READY_ORDER = """
WITH ready AS (
    SELECT id, owner_id, concurrency_key, priority_rank,
           GREATEST(created_at, COALESCE(next_attempt_at, run_at)) AS waiting_since,
           CASE WHEN %(aging_seconds)s::float8 <= 0 THEN -1
                ELSE GREATEST(-1, priority - floor(
                    extract(epoch FROM now()
                            - GREATEST(created_at, COALESCE(next_attempt_at, run_at)))
                    / %(aging_seconds)s::float8)::int)
           END AS effective_priority
    FROM jobs_job AS j
    WHERE status IN ('pending', 'retrying') AND pending_parents = 0
      AND (next_attempt_at IS NULL OR next_attempt_at <= now())
      AND type <> ALL(%(held_types)s::text[])
      AND NOT EXISTS (SELECT 1 FROM jobs_pause AS p
                      WHERE p.job_type = j.type OR p.priority = j.priority)),
turns AS (
    SELECT id, waiting_since, effective_priority, priority_rank,
           row_number() OVER (PARTITION BY effective_priority, owner_id, concurrency_key
                              ORDER BY priority_rank DESC, waiting_since, id) AS turn
    FROM ready)
SELECT id, effective_priority::int AS effective_priority, turn::int AS turn
FROM turns
WHERE turn <= %(turns)s::int
ORDER BY effective_priority, turn, priority_rank DESC, waiting_since, id
LIMIT %(limit)s
"""

# One page of READY_ORDER's jobs, in its order, locked FOR UPDATE SKIP LOCKED (a row another
# dispatcher or a cancel holds is passed over, not waited for; one no longer ready since the
# order was read is left out). ``id = ANY`` lets the planner look the page up by primary key
# (or by job_ready_idx, when fewer jobs are ready). The rows stay locked until the
# admission's transaction ends.
READY_PAGE = """
SELECT j.id, j.type, j.priority, j.concurrency_key, j.cpu_units, j.memory_mb, j.attempt,
       j.timeout_seconds, j.created_at,
       GREATEST(j.created_at, COALESCE(j.next_attempt_at, j.run_at)) AS waiting_since
FROM jobs_job AS j
JOIN unnest(%(job_ids)s::uuid[]) WITH ORDINALITY AS page(id, n) ON page.id = j.id
WHERE j.id = ANY(%(job_ids)s::uuid[])
  AND j.status IN ('pending', 'retrying') AND j.pending_parents = 0
  AND (j.next_attempt_at IS NULL OR j.next_attempt_at <= now())
  AND NOT EXISTS (SELECT 1 FROM jobs_pause AS p
                  WHERE p.job_type = j.type OR p.priority = j.priority)
ORDER BY page.n
FOR UPDATE OF j SKIP LOCKED
"""

# How long until the next waiting job's time comes (a delayed job's run_at or a retry's
# backoff, both in next_attempt_at), by the database's clock, the one READY_JOBS compares
# with; NULL when none waits for a time. Locks nothing. One probe of job_due_idx. A job
# already due is left out: it waits for capacity or parents, whose release asks again.
NEXT_DUE = """
SELECT EXTRACT(EPOCH FROM min(next_attempt_at) - now())::float8 AS due_in
FROM jobs_job
WHERE status IN ('pending', 'retrying') AND next_attempt_at > now()
"""

# admit_jobs: pending | retrying -> queued, for the jobs whose resources the ledger granted.
# The admission already holds their rows; the new attempt number is the lease's.
ADMIT_JOBS = """
WITH old AS (
    SELECT id, status FROM jobs_job
    WHERE id = ANY(%(job_ids)s::uuid[]) AND status IN ('pending', 'retrying')
    ORDER BY id FOR UPDATE),
moved AS (
    UPDATE jobs_job AS j
    SET status = 'queued', updated_at = now(), attempt = j.attempt + 1, queued_at = now(),
        next_attempt_at = NULL
    FROM old WHERE j.id = old.id
    RETURNING old.status AS previous_status, j.id, j.owner_id, j.type, j.priority, j.status,
              j.attempt, j.batch_id),
log AS (
    INSERT INTO jobs_executionlog
        (job_id, attempt, level, message, from_status, to_status, context, created_at)
    SELECT id, attempt, 'info', 'admitted: resources reserved', previous_status, status,
           '{}', now()
    FROM moved RETURNING id, job_id, created_at)
SELECT moved.*, log.id AS log_id, log.created_at AS logged_at
FROM moved JOIN log ON log.job_id = moved.id
"""

# --- an attempt --------------------------------------------------------------------------

# start_attempt: queued -> running, fenced by the attempt number: a stale or duplicate
# delivery (another attempt, or a job no longer queued) matches no row and must not run.
# Returns the whole row: the worker runs the handler from it.
START_ATTEMPT = """
WITH old AS (
    SELECT id, status FROM jobs_job
    WHERE id = %(job_id)s AND status = 'queued' AND attempt = %(attempt)s
    FOR UPDATE),
moved AS (
    UPDATE jobs_job AS j
    SET status = 'running', updated_at = now(), started_at = now(), worker = %(worker)s
    FROM old WHERE j.id = old.id
    RETURNING old.status AS previous_status, j.*),
log AS (
    INSERT INTO jobs_executionlog
        (job_id, attempt, level, message, from_status, to_status, context, created_at)
    SELECT id, attempt, 'info', %(message)s, previous_status, status, %(context)s, now()
    FROM moved RETURNING id, job_id, created_at)
SELECT moved.*, log.id AS log_id, log.created_at AS logged_at
FROM moved JOIN log ON log.job_id = moved.id
"""

# Locks one job's row. Sent before COMPLETE_ATTEMPT in the same query string (one round
# trip, one transaction): a statement reads the edges as of its start, and a child being
# submitted holds its parent FOR SHARE until it commits, so only a statement that starts after
# this lock is granted sees that child's edge.
LOCK_JOB = """
SELECT id FROM jobs_job WHERE id = %(job_id)s FOR UPDATE
"""

# complete_attempt: running -> completed, fenced by the attempt. Also takes one off the
# pending_parents of each child (children locked in id order, as every multi-row change here,
# so a completion cannot deadlock with a failing parent cancelling the same children);
# ready_children counts those it left ready, which this worker then admits itself.
COMPLETE_ATTEMPT = """
WITH old AS (
    SELECT id, status FROM jobs_job
    WHERE id = %(job_id)s AND status = 'running' AND attempt = %(attempt)s
    FOR UPDATE),
moved AS (
    UPDATE jobs_job AS j
    SET status = 'completed', updated_at = now(), result = %(result)s, completed_at = now(),
        error = ''
    FROM old WHERE j.id = old.id
    RETURNING old.status AS previous_status, j.id, j.owner_id, j.type, j.priority, j.status,
              j.attempt, j.batch_id),
log AS (
    INSERT INTO jobs_executionlog
        (job_id, attempt, level, message, from_status, to_status, context, created_at)
    SELECT id, attempt, 'info', %(message)s, previous_status, status, '{}', now()
    FROM moved RETURNING id, job_id, created_at),
children AS (
    SELECT k.id FROM jobs_job AS k
    WHERE k.id IN (SELECT e.job_id FROM jobs_jobdependency AS e
                   JOIN moved ON e.depends_on_id = moved.id)
    ORDER BY k.id FOR UPDATE),
released AS (
    UPDATE jobs_job AS k SET pending_parents = k.pending_parents - 1
    FROM children WHERE k.id = children.id
    RETURNING k.pending_parents, k.status)
SELECT moved.*, log.id AS log_id, log.created_at AS logged_at,
       (SELECT count(*) FROM released
        WHERE pending_parents = 0 AND status = 'pending') AS ready_children
FROM moved JOIN log ON log.job_id = moved.id
"""

# retry_attempt: running -> retrying, fenced by the attempt; it waits for next_attempt_at,
# holding no resources (the caller releases the lease after the commit).
RETRY_ATTEMPT = """
WITH old AS (
    SELECT id, status FROM jobs_job
    WHERE id = %(job_id)s AND status = 'running' AND attempt = %(attempt)s
    FOR UPDATE),
moved AS (
    UPDATE jobs_job AS j
    SET status = 'retrying', updated_at = now(), error = %(error)s,
        next_attempt_at = %(next_attempt_at)s
    FROM old WHERE j.id = old.id
    RETURNING old.status AS previous_status, j.id, j.owner_id, j.type, j.priority, j.status,
              j.attempt, j.batch_id),
log AS (
    INSERT INTO jobs_executionlog
        (job_id, attempt, level, message, from_status, to_status, context, created_at)
    SELECT id, attempt, 'warning', %(message)s, previous_status, status, %(context)s, now()
    FROM moved RETURNING id, job_id, created_at)
SELECT moved.*, log.id AS log_id, log.created_at AS logged_at
FROM moved JOIN log ON log.job_id = moved.id
"""

# fail_attempt: running -> failed, fenced by the attempt: its last attempt failed, or it
# failed for good. The caller writes the DeadLetter row in the same transaction.
FAIL_ATTEMPT = """
WITH old AS (
    SELECT id, status FROM jobs_job
    WHERE id = %(job_id)s AND status = 'running' AND attempt = %(attempt)s
    FOR UPDATE),
moved AS (
    UPDATE jobs_job AS j
    SET status = 'failed', updated_at = now(), error = %(error)s, completed_at = now(),
        next_attempt_at = NULL
    FROM old WHERE j.id = old.id
    RETURNING old.status AS previous_status, j.id, j.owner_id, j.type, j.priority, j.status,
              j.attempt, j.batch_id),
log AS (
    INSERT INTO jobs_executionlog
        (job_id, attempt, level, message, from_status, to_status, context, created_at)
    SELECT id, attempt, 'error', %(message)s, previous_status, status, %(context)s, now()
    FROM moved RETURNING id, job_id, created_at)
SELECT moved.*, log.id AS log_id, log.created_at AS logged_at
FROM moved JOIN log ON log.job_id = moved.id
"""

# hand_back_attempt: running -> pending, fenced by the attempt and by the worker recorded at its
# start (only the worker running it may give it back): that worker is stopping (a warm
# shutdown whose grace ran out) and gives the attempt back unfinished. Not charged: the retry
# policy counts attempt - attempt_offset, and attempt_offset grows by one here; the attempt
# number itself still grows at the next admission, so this attempt's late outcome is refused.
# A job whose cancel was requested is not matched (it ends cancelled). The caller releases the
# lease after the commit.
HAND_BACK_ATTEMPT = """
WITH old AS (
    SELECT id, status FROM jobs_job
    WHERE id = %(job_id)s AND status = 'running' AND attempt = %(attempt)s
      AND worker = %(worker)s AND NOT cancel_requested
    FOR UPDATE),
moved AS (
    UPDATE jobs_job AS j
    SET status = 'pending', updated_at = now(), attempt_offset = j.attempt_offset + 1,
        started_at = NULL, next_attempt_at = NULL
    FROM old WHERE j.id = old.id
    RETURNING old.status AS previous_status, j.id, j.owner_id, j.type, j.priority, j.status,
              j.attempt, j.batch_id),
log AS (
    INSERT INTO jobs_executionlog
        (job_id, attempt, level, message, from_status, to_status, context, created_at)
    SELECT id, attempt, 'info', %(message)s, previous_status, status, %(context)s, now()
    FROM moved RETURNING id, job_id, created_at)
SELECT moved.*, log.id AS log_id, log.created_at AS logged_at
FROM moved JOIN log ON log.job_id = moved.id
"""

# fail_waiting: pending | retrying -> failed, for a job that can never be admitted (it needs
# more than the whole cluster, which shrank since it was submitted). Not fenced by attempt:
# no attempt of it is out.
FAIL_WAITING = """
WITH old AS (
    SELECT id, status FROM jobs_job
    WHERE id = %(job_id)s AND status IN ('pending', 'retrying')
    FOR UPDATE),
moved AS (
    UPDATE jobs_job AS j
    SET status = 'failed', updated_at = now(), error = %(error)s, completed_at = now(),
        next_attempt_at = NULL
    FROM old WHERE j.id = old.id
    RETURNING old.status AS previous_status, j.id, j.owner_id, j.type, j.priority, j.status,
              j.attempt, j.batch_id),
log AS (
    INSERT INTO jobs_executionlog
        (job_id, attempt, level, message, from_status, to_status, context, created_at)
    SELECT id, attempt, 'error', %(message)s, previous_status, status, %(context)s, now()
    FROM moved RETURNING id, job_id, created_at)
SELECT moved.*, log.id AS log_id, log.created_at AS logged_at
FROM moved JOIN log ON log.job_id = moved.id
"""

# --- cancelling --------------------------------------------------------------------------

# cancel_attempt: running -> cancelled, fenced by the attempt: the handler stopped for the
# cancel, or the scheduler terminated it after the grace period.
CANCEL_ATTEMPT = """
WITH old AS (
    SELECT id, status FROM jobs_job
    WHERE id = %(job_id)s AND status = 'running' AND attempt = %(attempt)s
    FOR UPDATE),
moved AS (
    UPDATE jobs_job AS j
    SET status = 'cancelled', updated_at = now(), completed_at = now()
    FROM old WHERE j.id = old.id
    RETURNING old.status AS previous_status, j.id, j.owner_id, j.type, j.priority, j.status,
              j.attempt, j.batch_id),
log AS (
    INSERT INTO jobs_executionlog
        (job_id, attempt, level, message, from_status, to_status, context, created_at)
    SELECT id, attempt, 'info', %(message)s, previous_status, status, '{}', now()
    FROM moved RETURNING id, job_id, created_at)
SELECT moved.*, log.id AS log_id, log.created_at AS logged_at
FROM moved JOIN log ON log.job_id = moved.id
"""

# cancel_waiting: pending | queued | retrying -> cancelled, fenced by the attempt the caller
# read (admission moves pending -> queued with a new attempt, so a job admitted meanwhile is
# not matched and the caller looks again). previous_status says whether a lease was held.
CANCEL_WAITING = """
WITH old AS (
    SELECT id, status FROM jobs_job
    WHERE id = %(job_id)s AND status IN ('pending', 'queued', 'retrying')
      AND attempt = %(attempt)s
    FOR UPDATE),
moved AS (
    UPDATE jobs_job AS j
    SET status = 'cancelled', updated_at = now(), completed_at = now(), cancel_requested = true
    FROM old WHERE j.id = old.id
    RETURNING old.status AS previous_status, j.id, j.owner_id, j.type, j.priority, j.status,
              j.attempt, j.batch_id),
log AS (
    INSERT INTO jobs_executionlog
        (job_id, attempt, level, message, from_status, to_status, context, created_at)
    SELECT id, attempt, 'info', %(message)s, previous_status, status, '{}', now()
    FROM moved RETURNING id, job_id, created_at)
SELECT moved.*, log.id AS log_id, log.created_at AS logged_at
FROM moved JOIN log ON log.job_id = moved.id
"""

# Not a status change: asks a running attempt to stop (its worker's lease keeper sees the
# flag), and writes the request in the job's log. updated_at starts the cancel grace period.
REQUEST_CANCEL = """
WITH flagged AS (
    UPDATE jobs_job SET cancel_requested = true, updated_at = now()
    WHERE id = %(job_id)s AND status = 'running'
    RETURNING id, attempt)
INSERT INTO jobs_executionlog
    (job_id, attempt, level, message, from_status, to_status, context, created_at)
SELECT id, attempt, 'info', %(message)s, '', '', '{}', now() FROM flagged
RETURNING job_id, attempt
"""

# cancel_descendants: pending -> cancelled for the descendants of a job that will never
# complete (it failed or was cancelled). Locks them in id order.
CANCEL_DESCENDANTS = """
WITH old AS (
    SELECT id, status FROM jobs_job
    WHERE id = ANY(%(job_ids)s::uuid[]) AND status = 'pending'
    ORDER BY id FOR UPDATE),
moved AS (
    UPDATE jobs_job AS j
    SET status = 'cancelled', updated_at = now(), completed_at = now(), error = %(reason)s
    FROM old WHERE j.id = old.id
    RETURNING old.status AS previous_status, j.id, j.owner_id, j.type, j.priority, j.status,
              j.attempt, j.batch_id),
log AS (
    INSERT INTO jobs_executionlog
        (job_id, attempt, level, message, from_status, to_status, context, created_at)
    SELECT id, attempt, 'warning', %(reason)s, previous_status, status, '{}', now()
    FROM moved RETURNING id, job_id, created_at)
SELECT moved.*, log.id AS log_id, log.created_at AS logged_at
FROM moved JOIN log ON log.job_id = moved.id
"""

# Every job that depends, directly or not, on any of some jobs (the edges are a DAG).
DESCENDANTS = """
WITH RECURSIVE d(id) AS (
    SELECT job_id FROM jobs_jobdependency WHERE depends_on_id = ANY(%(job_ids)s::uuid[])
    UNION
    SELECT e.job_id FROM jobs_jobdependency AS e JOIN d ON e.depends_on_id = d.id)
SELECT id FROM d
"""

# --- the dead-letter queue ---------------------------------------------------------------

# redrive_jobs: failed -> pending with a fresh budget of attempts (attempt_offset counts the
# ones spent before), keeping priority, resources and payload; its wait for admission starts
# now (next_attempt_at: READY_ORDER ages from it), or a bulk re-drive of old jobs would all
# come back starving, ahead of every fresh job. Locks them in id order.
REDRIVE_JOBS = """
WITH old AS (
    SELECT id, status FROM jobs_job
    WHERE id = ANY(%(job_ids)s::uuid[]) AND status = 'failed'
    ORDER BY id FOR UPDATE),
moved AS (
    UPDATE jobs_job AS j
    SET status = 'pending', updated_at = now(), attempt_offset = j.attempt,
        next_attempt_at = now(), completed_at = NULL, started_at = NULL, error = '',
        result = NULL, cancel_requested = false
    FROM old WHERE j.id = old.id
    RETURNING old.status AS previous_status, j.id, j.owner_id, j.type, j.priority, j.status,
              j.attempt, j.batch_id),
log AS (
    INSERT INTO jobs_executionlog
        (job_id, attempt, level, message, from_status, to_status, context, created_at)
    SELECT id, attempt, 'info', 're-driven from the dead-letter queue', previous_status,
           status, '{}', now()
    FROM moved RETURNING id, job_id, created_at)
SELECT moved.*, log.id AS log_id, log.created_at AS logged_at
FROM moved JOIN log ON log.job_id = moved.id
"""

# revive_descendants: cancelled -> pending for descendants that the failure of an ancestor
# cancelled (never those cancelled by a person: cancel_requested), when that ancestor is
# re-driven. Their pending_parents still count the unfinished parents (a completion decrements
# every child, cancelled or not), so they run once it completes. Locks them in id order.
REVIVE_DESCENDANTS = """
WITH old AS (
    SELECT id, status FROM jobs_job
    WHERE id = ANY(%(job_ids)s::uuid[]) AND status = 'cancelled' AND NOT cancel_requested
    ORDER BY id FOR UPDATE),
moved AS (
    UPDATE jobs_job AS j
    SET status = 'pending', updated_at = now(), attempt_offset = j.attempt,
        completed_at = NULL, error = ''
    FROM old WHERE j.id = old.id
    RETURNING old.status AS previous_status, j.id, j.owner_id, j.type, j.priority, j.status,
              j.attempt, j.batch_id),
log AS (
    INSERT INTO jobs_executionlog
        (job_id, attempt, level, message, from_status, to_status, context, created_at)
    SELECT id, attempt, 'info', %(message)s, previous_status, status, '{}', now()
    FROM moved RETURNING id, job_id, created_at)
SELECT moved.*, log.id AS log_id, log.created_at AS logged_at
FROM moved JOIN log ON log.job_id = moved.id
"""

# The parents of some jobs, with their status, to decide which descendants may come back.
# FOR SHARE: a parent cannot fail (which cancels its pending descendants) until the revival
# commits, so it then sees the revived children and cancels them again.
PARENT_STATUSES = """
SELECT e.job_id, e.depends_on_id AS parent_id, p.status AS parent_status
FROM jobs_jobdependency AS e JOIN jobs_job AS p ON p.id = e.depends_on_id
WHERE e.job_id = ANY(%(job_ids)s::uuid[])
ORDER BY p.id FOR SHARE OF p
"""
