"""Submission over HTTP: single jobs at 20 concurrent clients (throughput, latency, API
memory growth) and batches of 1,000 jobs with dependencies, each beside the DRF baseline."""

from __future__ import annotations

from typing import Any

from bench.load import LoadResult
from bench.procs import children, rss_mb
from bench.report import Figure, at_least, below, ratio_at_least
from bench.runner import NOOP, Bench


def batch_body(size: int) -> dict[str, Any]:
    """``size`` noop jobs forming a binary tree: every job but the first has one parent."""
    return {
        "jobs": [
            {
                "key": f"k{i}",
                "type": "noop",
                "payload": {"n": i},
                "depends_on": [f"k{(i - 1) // 2}"] if i else [],
            }
            for i in range(size)
        ]
    }


def _api_rss(bench: Bench, name: str) -> dict[int, float]:
    return {pid: rss_mb(pid) for pid in children(bench.procs.pid(name))}


def _single(bench: Bench, *, baseline: bool) -> tuple[LoadResult, float]:
    """Run the single-job load on one server; returns the timed run and the RSS growth in
    MiB over ``counts.memory`` submissions after the warm-up (summed over the gunicorn
    workers)."""
    counts = bench.opts.counts
    label = "baseline" if baseline else "Draconic"
    name = "baseline-api" if baseline else "api"
    path = "/baseline/" if baseline else "/jobs/"
    port = bench.start_api(baseline=baseline)
    bench.load(
        port, path, NOOP, total=counts.warmup, clients=counts.clients, label=f"{label} warm-up"
    )
    before = _api_rss(bench, name)
    with bench.profiling("submit", name):
        timed = bench.load(
            port,
            path,
            NOOP,
            total=counts.single,
            clients=counts.clients,
            label=f"{label} single-job submissions",
        )
    bench.say(
        f"{label}: {timed.rate:,.0f} jobs/s, p99 {timed.percentile(99):.1f} ms "
        f"(the load generator used {timed.cpu / timed.elapsed:.0%} of a core)"
    )
    middle = _api_rss(bench, name)
    rest = counts.memory - counts.single
    if rest > 0:
        bench.load(
            port, path, NOOP, total=rest, clients=counts.clients, label=f"{label} memory run"
        )
    after = _api_rss(bench, name)
    if set(after) != set(before):
        bench.report.notes.append(f"{label}: a gunicorn worker was replaced during the memory run")
    growth = sum(after.get(pid, 0.0) - rss for pid, rss in before.items())
    first = sum(middle.get(pid, 0.0) - rss for pid, rss in before.items())
    bench.report.notes.append(
        f"{label} API RSS (both gunicorn workers): +{first:.1f} MiB over the first "
        f"{counts.single:,} submissions, +{growth - first:.1f} MiB over the next {rest:,}"
    )
    bench.say(f"{label}: API RSS {sum(before.values()):.1f} -> {sum(after.values()):.1f} MiB")
    bench.stop(name)
    return timed, growth


def submission(bench: Bench) -> None:
    platform, platform_growth = _single(bench, baseline=False)
    baseline, baseline_growth = _single(bench, baseline=True)
    clients = bench.opts.counts.clients
    add = bench.report.add
    add(
        Figure(
            f"single-job submit, {clients} clients",
            platform.rate,
            baseline.rate,
            "jobs/s",
            ">= 75% of baseline",
            ratio_at_least(0.75),
        )
    )
    add(Figure("  latency p50", platform.percentile(50), baseline.percentile(50), "ms"))
    add(Figure("  latency p95", platform.percentile(95), baseline.percentile(95), "ms"))
    add(
        Figure(
            "  latency p99",
            platform.percentile(99),
            baseline.percentile(99),
            "ms",
            "< 50 ms",
            below(50),
        )
    )
    add(
        Figure(
            f"API RSS growth over {bench.opts.counts.memory:,} submits",
            platform_growth,
            baseline_growth,
            "MiB",
            "< 10 MiB per 10,000",
            below(10),
        )
    )
    bench.between_phases()


def batch(bench: Bench) -> None:
    counts = bench.opts.counts
    body = batch_body(counts.batch_size)
    rates = []
    for baseline in (False, True):
        label = "baseline" if baseline else "Draconic"
        port = bench.start_api(baseline=baseline)
        path = "/baseline/batch/" if baseline else "/jobs/batch/"
        bench.load(port, path, body, total=2, clients=1, label=f"{label} batch warm-up")
        result = bench.load(
            port,
            path,
            body,
            total=counts.batches,
            clients=counts.batch_clients,
            label=f"{label} batches of {counts.batch_size:,}",
        )
        rate = result.ok * counts.batch_size / result.elapsed
        bench.say(
            f"{label}: {rate:,.0f} jobs/s in batches, {result.percentile(50):.0f} ms per batch"
        )
        rates.append(rate)
        bench.stop("baseline-api" if baseline else "api")
    bench.report.add(
        Figure(
            f"batch submit ({counts.batch_size:,} jobs with deps per request)",
            rates[0],
            rates[1],
            "jobs/s",
            ">= 10,000 jobs/s",
            at_least(10_000),
        )
    )
    bench.between_phases()
