"""Delayed jobs: the lateness of 1,000 jobs due in the same second, from each job's due time
(``run_at``) to its admission (``queued_at``) and to its start (``started_at``), all three
from PostgreSQL's rows. The jobs are submitted in one batch a few seconds before the second
they are due in, their due times spread evenly over it, so the scheduler must wake for them
itself: no submit, no tick, wakes it on time. A job started before its due time is an error,
not a figure. Due -> running also holds the worker's queue: one worker with 2 processes
drains a few hundred noop jobs a second here, fewer than the 1,000 a second that come due."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from bench import store
from bench.load import percentile
from bench.report import Figure, below
from bench.runner import Bench
from bench.worker_phases import PLATFORM, _batch_counts, _platform_ready, wait_for

JOBS = 1_000
#: Seconds between the submit and the first due time: the batch is stored well before.
LEAD = 4.0
#: Room in the ledger for the whole burst: the figure is the time, not the capacity cap
#: (at the bench's 256 CPU units, admission would wait for the worker to free room).
CAPACITY = {"MAX_CPU_UNITS": str(2 * JOBS), "MAX_MEMORY_MB": str(2 * JOBS * 128)}


def delayed(bench: Bench) -> None:
    port = bench.start_api()
    bench.start_worker(settings=CAPACITY)
    bench.start_scheduler(settings=CAPACITY)
    _platform_ready(bench, port)
    first = time.time() + LEAD
    body = {
        "jobs": [
            {"type": "noop", "payload": {"n": i}, "run_at": _rfc3339(first + i / JOBS)}
            for i in range(JOBS)
        ]
    }
    batch_id = bench.post_json(port, "/jobs/batch/", body)["batch_id"]
    if time.time() >= first:
        bench.report.notes.append("delayed: the batch was stored after its first due time")
    wait_for(bench, "delayed", JOBS, lambda: _batch_counts([batch_id]), PLATFORM)
    rows = store.sql(
        "SELECT EXTRACT(EPOCH FROM queued_at - run_at)::float8,"
        " EXTRACT(EPOCH FROM started_at - run_at)::float8"
        " FROM jobs_job WHERE batch_id = %s",
        [batch_id],
    )
    admitted = [r[0] for r in rows]
    started = [r[1] for r in rows]
    early = sum(1 for s in started if s < 0)
    if early:
        raise RuntimeError(f"delayed: {early} of {JOBS} jobs started before their run_at")
    _add_figures(bench, admitted, started)
    bench.between_phases()


def _add_figures(bench: Bench, admitted: list[float], started: list[float]) -> None:
    def ms(values: list[float], q: float) -> float:
        return percentile(values, q) * 1000

    bench.say(
        f"delayed: due -> queued p50 {ms(admitted, 50):.1f} ms, p99 {ms(admitted, 99):.1f} ms;"
        f" due -> running p50 {ms(started, 50):.1f} ms, p99 {ms(started, 99):.1f} ms"
    )
    title = f"lateness of {JOBS:,} delayed jobs due in the same second (due -> running)"
    add = bench.report.add
    add(Figure(f"{title} p50", ms(started, 50), unit="ms"))
    add(Figure(f"{title} p99", ms(started, 99), unit="ms", goal="< 100 ms", check=below(100)))
    add(Figure("  due -> queued (the scheduler's share) p50", ms(admitted, 50), unit="ms"))
    add(
        Figure(
            "  due -> queued (the scheduler's share) p99",
            ms(admitted, 99),
            unit="ms",
            goal="< 100 ms",
            check=below(100),
        )
    )


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()
