"""The scheduler's rollup sweep: aggregates the jobs that finished in each closed bucket,
once, into ``JobRollup`` (see its module), and prunes the buckets past their keep.

A bucket is closed ``GRACE`` after its end: a job's ``completed_at`` is ``now()`` of its
finishing transaction (when it began), and those are short, so one still open at the
bucket's end commits within that grace (one that does not is not counted). Each bucket is aggregated from the jobs table (through the partial indexes
``job_completed_at_idx`` and ``job_failed_at_idx``), never from smaller buckets: percentiles do
not add up. The sweep is idempotent and safe with two schedulers (it runs outside the
dispatcher's lock, so as not to hold up admission): every row is an upsert of
the same aggregate of the same closed rows, and a bucket's all-types row, written in the same
transaction as its type rows even when nothing finished, marks it done. It catches up at most
``MAX_BUCKETS`` buckets of a grain per run, the oldest first, from no earlier than its keep.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from jobs.rollups.models import KEEP, WIDTH, Grain

#: How long after its end a bucket is aggregated.
GRACE = timedelta(seconds=30)
#: The most buckets of each grain one run aggregates, the oldest first (a day of minutes
#: takes 24 runs, 8 days of hours 32): what one statement reads stays small.
MAX_BUCKETS = {Grain.MINUTE: 60, Grain.HOUR: 6}
_TABLE = "jobs_jobrollup"

# ROLLUP_BUCKETS: the completed and the failed jobs that finished in [lo, hi) (each set read
# through its own partial index), grouped by bucket and type and by bucket alone (the
# all-types row, type ''), upserted. Locks only the rollup rows it writes.
ROLLUP_BUCKETS = f"""
WITH finished AS (
    SELECT date_trunc(%(unit)s, completed_at, 'UTC') AS bucket, type, status, created_at,
           run_at, started_at, completed_at
    FROM jobs_job
    WHERE status = 'completed' AND completed_at >= %(lo)s AND completed_at < %(hi)s
  UNION ALL
    SELECT date_trunc(%(unit)s, completed_at, 'UTC'), type, status, created_at,
           run_at, started_at, completed_at
    FROM jobs_job
    WHERE status = 'failed' AND completed_at >= %(lo)s AND completed_at < %(hi)s
), timed AS (
    SELECT bucket, type, status,
           extract(epoch FROM started_at - greatest(created_at, run_at)) AS wait,
           extract(epoch FROM completed_at - started_at) AS run
    FROM finished
)
INSERT INTO {_TABLE} (grain, bucket, type, completed, failed,
                      wait_p50, wait_p95, run_p50, run_p95)
SELECT %(grain)s, bucket, coalesce(type, ''),
       count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed'),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY wait),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY wait),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY run),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY run)
FROM timed
GROUP BY GROUPING SETS ((bucket, type), (bucket))
ON CONFLICT (grain, bucket, type) DO UPDATE SET
    completed = EXCLUDED.completed, failed = EXCLUDED.failed,
    wait_p50 = EXCLUDED.wait_p50, wait_p95 = EXCLUDED.wait_p95,
    run_p50 = EXCLUDED.run_p50, run_p95 = EXCLUDED.run_p95
"""

# MARK_EMPTY_BUCKETS: an all-types row of zeros for each bucket of [lo, hi) in which nothing
# finished, so that every aggregated bucket has its all-types row (the sweep's cursor).
MARK_EMPTY_BUCKETS = f"""
INSERT INTO {_TABLE} (grain, bucket, type, completed, failed)
SELECT %(grain)s, b, '', 0, 0
FROM generate_series(%(lo)s::timestamptz, %(hi)s::timestamptz - %(width)s::interval,
                     %(width)s::interval) AS b
ON CONFLICT (grain, bucket, type) DO NOTHING
"""

# LAST_BUCKET: the newest aggregated bucket of a grain (the unique index, backwards).
LAST_BUCKET = f"""
SELECT max(bucket) FROM {_TABLE} WHERE grain = %(grain)s AND type = ''
"""

# PRUNE_BUCKETS: the buckets of a grain older than its keep.
PRUNE_BUCKETS = f"""
DELETE FROM {_TABLE} WHERE grain = %(grain)s AND bucket < %(before)s
"""


@dataclass
class RollupReport:
    buckets: int = 0
    pruned: int = 0


def floor_to(at: datetime, grain: Grain) -> datetime:
    """The start of the bucket of ``grain`` that ``at`` falls in (UTC)."""
    at = at.astimezone(UTC)
    if grain == Grain.HOUR:
        return at.replace(minute=0, second=0, microsecond=0)
    return at.replace(second=0, microsecond=0)


#: Per grain, when (this process's monotonic clock) the next bucket closes: until then a run
#: of the sweep asks the database nothing about that grain.
_next_close: dict[Grain, float] = {}


def rollup_sweep(now: datetime | None = None) -> RollupReport:
    """Aggregate the closed buckets not aggregated yet, prune the old ones. With ``now``
    (tests), the process's memo of when the next bucket closes is bypassed."""
    report = RollupReport()
    for grain in (Grain.MINUTE, Grain.HOUR):
        if now is None and time.monotonic() < _next_close.get(grain, 0.0):
            continue
        done, pruned, closes_in = rollup_grain(grain, now or timezone.now())
        report.buckets += done
        report.pruned += pruned
        _next_close[grain] = time.monotonic() + closes_in
    return report


def rollup_grain(grain: Grain, now: datetime) -> tuple[int, int, float]:
    """Aggregate the next closed buckets of ``grain``; returns how many, how many old rows it
    pruned, and the seconds until the next bucket closes (0 when more wait to be done)."""
    width, oldest = WIDTH[grain], floor_to(now - KEEP[grain], grain)
    closed_until = floor_to(now - GRACE, grain)  # buckets before this one are closed
    with connection.cursor() as cursor:
        cursor.execute(PRUNE_BUCKETS, {"grain": grain.value, "before": oldest})
        pruned = cursor.rowcount
        cursor.execute(LAST_BUCKET, {"grain": grain.value})
        last = cursor.fetchone()[0]
    lo = oldest if last is None else max(oldest, last + width)
    hi = min(closed_until, lo + MAX_BUCKETS[grain] * width)
    if lo < hi:
        params: dict[str, Any] = {
            "grain": grain.value,
            "unit": grain.value,
            "lo": lo,
            "hi": hi,
            "width": f"{int(width.total_seconds())} seconds",
        }
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(ROLLUP_BUCKETS, params)
            cursor.execute(MARK_EMPTY_BUCKETS, params)
    done = max(0, int((hi - lo) / width))
    if hi < closed_until:
        return done, pruned, 0.0
    next_close = closed_until + width + GRACE
    return done, pruned, max(0.0, (next_close - now).total_seconds())
