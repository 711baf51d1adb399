"""Scaling: submission and dispatch rates with a small and a large jobs table (the ratio
should be near 1: every hot query uses an index), and the plans of the hot queries."""

from __future__ import annotations

import time
from datetime import timedelta

from bench import store
from bench.report import Figure, ratio_at_least
from bench.runner import NOOP, Bench


def _submit_rate(bench: Bench, level: int) -> float:
    counts = bench.opts.counts
    port = bench.start_api()
    bench.load(port, "/jobs/", NOOP, total=counts.warmup, clients=counts.clients, label="warm-up")
    result = bench.load(
        port,
        "/jobs/",
        NOOP,
        total=counts.scale_requests,
        clients=counts.clients,
        label=f"submissions at {level:,} rows",
    )
    bench.stop("api")
    store.settle_leftovers()
    return result.rate


def _dispatch_rate(bench: Bench, level: int, *, plans: bool) -> float:
    """Admission of ``scale_dispatch`` ready jobs by ``admission.dispatch()`` in this process
    (no worker; capacity set high for this process only), publishing included."""
    from jobs.engine import admission

    n = bench.opts.counts.scale_dispatch
    store.insert_ready(bench.owner_id, n)
    if plans:
        capture_plans(bench)
    started = time.perf_counter()
    admitted = 0
    while admitted < n:
        step = admission.dispatch()
        if step == 0:
            raise RuntimeError(f"dispatch admitted nothing at {admitted:,}/{n:,}")
        admitted += step
    elapsed = time.perf_counter() - started
    store.settle_leftovers()
    store.reset_redis(bench.redis)
    return admitted / elapsed


def scaling(bench: Bench) -> None:
    """Small table, large table, ``rounds`` times (the table is truncated and refilled
    between rounds, so the two sizes alternate); the best rate of each size counts."""
    counts = bench.opts.counts
    rates: dict[int, list[tuple[float, float]]] = {counts.scale_small: [], counts.scale_large: []}
    for index in range(counts.rounds):
        # Every table that references jobs_job goes with it (a schedule's fire rows too).
        store.sql(
            "TRUNCATE jobs_job, jobs_jobdependency, jobs_executionlog, jobs_deadletter, "
            "jobs_schedulefire"
        )
        for level in (counts.scale_small, counts.scale_large):
            started = time.monotonic()
            added = store.fill_jobs(bench.owner_id, level)
            bench.say(
                f"jobs table filled to {level:,} rows "
                f"(+{added:,} in {time.monotonic() - started:.0f} s)"
            )
            submit = _submit_rate(bench, level)
            last = index == counts.rounds - 1 and level == counts.scale_large
            dispatch = _dispatch_rate(bench, level, plans=last)
            bench.say(
                f"at {level:,} rows: submit {submit:,.0f} jobs/s, dispatch {dispatch:,.0f} jobs/s"
            )
            rates[level].append((submit, dispatch))
    if counts.rounds > 1:
        bench.report.notes.append(
            "scaling: best of "
            + f"{counts.rounds} rounds; "
            + "; ".join(
                f"{level:,} rows: submit {', '.join(f'{s:,.0f}' for s, _ in runs)}, "
                f"dispatch {', '.join(f'{d:,.0f}' for _, d in runs)} jobs/s"
                for level, runs in rates.items()
            )
        )
    small = (
        max(s for s, _ in rates[counts.scale_small]),
        max(d for _, d in rates[counts.scale_small]),
    )
    large = (
        max(s for s, _ in rates[counts.scale_large]),
        max(d for _, d in rates[counts.scale_large]),
    )
    label = f"{counts.scale_small:,} rows"
    add = bench.report.add
    add(
        Figure(
            f"submit rate with {counts.scale_large:,} rows in the table",
            large[0],
            small[0],
            "jobs/s",
            ">= 90% of small table",
            ratio_at_least(0.90),
            baseline_label=label,
        )
    )
    add(
        Figure(
            f"dispatch rate with {counts.scale_large:,} rows in the table",
            large[1],
            small[1],
            "jobs/s",
            ">= 90% of small table",
            ratio_at_least(0.90),
            baseline_label=label,
        )
    )
    bench.between_phases()


def capture_plans(bench: Bench) -> None:
    """EXPLAIN ANALYZE of the hot queries, on the large table, into the report."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from jobs.api import selectors
    from jobs.models import Job, JobStatus

    user = get_user_model().objects.get(pk=bench.owner_id)
    ((rows,),) = store.sql("SELECT count(*) FROM jobs_job")
    plans = bench.report.plans
    for title, query in _ready_queries():
        plans.append(
            (
                f"{title} ({rows:,} rows, {bench.opts.counts.scale_dispatch:,} ready)",
                store.explain(query),
            )
        )
    plans.append(
        (
            "GET /jobs/ first page (selectors.job_list)",
            selectors.job_list(user=user)[:50].explain(analyze=True),
        )
    )
    plans.append(
        (
            "GET /jobs/ page count (PageNumberPagination)",
            store.explain("SELECT count(*) FROM jobs_job WHERE owner_id = %s", [bench.owner_id]),
        )
    )
    plans.append(
        (
            "GET /jobs/?status=running first page",
            selectors.job_list(user=user, status="running")[:50].explain(analyze=True),
        )
    )
    ((some,),) = store.sql("SELECT id FROM jobs_job LIMIT 1")
    plans.append(
        (
            "children of a completed job (jobs.engine.attempts.job_complete)",
            store.explain("SELECT job_id FROM jobs_jobdependency WHERE depends_on_id = %s", [some]),
        )
    )
    plans.append(
        (
            "scheduler: leased jobs (reconcile_ledger, every tick)",
            store.explain(
                "SELECT id, attempt, cpu_units, memory_mb, status, priority, timeout_seconds "
                "FROM jobs_job WHERE status IN ('queued', 'running')"
            ),
        )
    )
    cutoff = timezone.now() - timedelta(seconds=300)
    plans.append(
        (
            "scheduler: stale queued jobs (republish_stale_queued)",
            Job.objects.filter(status=JobStatus.QUEUED, queued_at__lt=cutoff)
            .order_by("priority", "created_at")
            .values_list("id", "attempt", "priority", "timeout_seconds")[:1000]
            .explain(analyze=True),
        )
    )


def _ready_queries() -> list[tuple[str, str]]:
    """The SQL the dispatcher really runs for its first and its next batch of ready rows,
    captured (and rolled back) so the plans follow the code."""
    from django.conf import settings
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from jobs.engine import admission

    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        order = admission.ready_order()
        if order:
            admission.ready_page(order[: settings.DRACONIC_DISPATCH_BATCH])
        transaction.set_rollback(True)
    titles = ["dispatcher ready order (once a pass)", "dispatcher ready page (locks a batch)"]
    # The scan is a prepared statement: its EXECUTE is explained (in this same session, where
    # it was prepared), with the plan PostgreSQL uses for it.
    runs = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("EXECUTE")]
    return list(zip(titles, runs, strict=False))
