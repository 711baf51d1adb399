"""Admission with limits: the dispatch rate of ready jobs spread over 1,000 distinct
concurrency keys, each under a ``tenant:*`` rule (a concurrency and a rate bound, neither ever
reached, so every job is admitted and only the cost of checking is measured), beside the rate
of the same jobs with no key and no rule. Both run ``admission.dispatch()`` in this process
(no worker; capacity set high for this process only), publishing included; the fair order's
window then also partitions the keyed jobs 1,000 ways."""

from __future__ import annotations

import time

from bench import store
from bench.report import Figure, ratio_at_least
from bench.runner import Bench

KEYS = 1_000


def _admit_all(bench: Bench, *, keys: int) -> float:
    from jobs.engine import admission
    from jobs.models import Limit

    n = bench.opts.counts.scale_dispatch * 2
    Limit.objects.all().delete()
    if keys:
        Limit.objects.create(key="tenant:*", max_concurrency=1_000_000, rate="100000/s")
    store.insert_ready(bench.owner_id, n, keys=keys)
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
    Limit.objects.all().delete()
    return admitted / elapsed


def admission_with_limits(bench: Bench) -> None:
    """``rounds`` alternating rounds of both; the best rate of each counts."""
    rounds = max(bench.opts.counts.rounds, 2)
    plain: list[float] = []
    keyed: list[float] = []
    for _ in range(rounds):
        plain.append(_admit_all(bench, keys=0))
        keyed.append(_admit_all(bench, keys=KEYS))
        bench.say(f"dispatch: no limits {plain[-1]:,.0f} jobs/s, {KEYS:,} keys {keyed[-1]:,.0f}")
    bench.report.notes.append(
        f"admission with limits: best of {rounds} rounds; no limits "
        + ", ".join(f"{r:,.0f}" for r in plain)
        + f"; {KEYS:,} keys "
        + ", ".join(f"{r:,.0f}" for r in keyed)
        + " jobs/s"
    )
    bench.report.add(
        Figure(
            f"admission rate with {KEYS:,} distinct limit keys in use",
            max(keyed),
            max(plain),
            "jobs/s",
            ">= 80% of no limits",
            ratio_at_least(0.80),
            baseline_label="no limits",
        )
    )
    bench.between_phases()
