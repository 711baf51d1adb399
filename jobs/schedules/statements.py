"""The SQL of firing schedules, written out whole and named (how statements are written and
run: ``jobs.engine.statements``)."""

from __future__ import annotations

# The schedule due soonest, locked for this scheduler's firing transaction. SKIP LOCKED: a
# schedule another scheduler is firing is passed over, not waited for; the lock ends with the
# transaction, so a scheduler killed while firing lets go of it when PostgreSQL notices.
LOCK_DUE_SCHEDULE = """
SELECT id FROM jobs_schedule
WHERE NOT paused AND next_fire_at <= %(now)s
ORDER BY next_fire_at
LIMIT 1
FOR UPDATE SKIP LOCKED
"""

# Claims one due time of a schedule: the unique row per (schedule, due time) that makes it
# fire once. Inserted in the transaction that submits its job, so the claim and the job
# commit together or not at all. A row another scheduler inserted first (committed, or still
# in flight: the unique index makes this wait for it) returns nothing: that due time is done.
CLAIM_DUE_TIME = """
INSERT INTO jobs_schedulefire (schedule_id, due_at, manual, outcome, detail, created_at)
VALUES (%(schedule_id)s, %(due_at)s, false, %(outcome)s, %(detail)s, now())
ON CONFLICT (schedule_id, due_at) WHERE NOT manual DO NOTHING
RETURNING id
"""

# A fire asked for by POST /schedules/{id}/trigger: not a due time, so not unique.
INSERT_MANUAL_FIRE = """
INSERT INTO jobs_schedulefire (schedule_id, due_at, manual, outcome, detail, created_at)
VALUES (%(schedule_id)s, %(due_at)s, true, %(outcome)s, %(detail)s, now())
RETURNING id
"""

# The job a fire submitted (in the same transaction as the claim).
SET_FIRE_JOB = """
UPDATE jobs_schedulefire SET job_id = %(job_id)s::uuid WHERE id = %(fire_id)s
"""

# Moves a schedule on past the due times it just handled (NULL: none left before end_at).
# The row is this transaction's: LOCK_DUE_SCHEDULE locked it.
ADVANCE_SCHEDULE = """
UPDATE jobs_schedule SET next_fire_at = %(next_fire_at)s::timestamptz, updated_at = now()
WHERE id = %(schedule_id)s
"""

# When the soonest schedule is due: what the scheduler sleeps until.
NEXT_FIRE_AT = """
SELECT min(next_fire_at) AS next_fire_at FROM jobs_schedule
WHERE NOT paused AND next_fire_at IS NOT NULL
"""
