"""Submission over HTTP: single jobs at 20 concurrent clients (throughput, latency, API
memory growth) and batches of 1,000 jobs with dependencies, each beside the DRF baseline."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from bench.load import LoadResult
from bench.procs import children, rss_mb, tree_cpu_seconds
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


@dataclass
class _Run:
    timed: LoadResult
    cpu_ms: float  # CPU of the gunicorn workers per timed request
    growth: float | None  # RSS growth over counts.memory submissions (first round only)


#: The servers of the single-job figures: production's gunicorn, the DRF baseline's, and
#: make run's daphne (the Procfile's web line).
SIDES = ("Draconic", "baseline", "make run")


def _start(bench: Bench, label: str) -> tuple[str, str, int]:
    """Start ``label``'s server: its process name, the path to post to, and its port."""
    if label == "make run":
        from bench.make_run import start_web

        return "make-run-web", "/jobs/", start_web(bench)
    baseline = label == "baseline"
    port = bench.start_api(baseline=baseline)
    return ("baseline-api", "/baseline/", port) if baseline else ("api", "/jobs/", port)


def _single(bench: Bench, label: str, *, first: bool) -> _Run:
    """Run the single-job load on one server. The first round also profiles (``--profile``)
    and measures RSS growth over ``counts.memory`` submissions after the warm-up (summed
    over the gunicorn workers; not for make run's daphne)."""
    counts = bench.opts.counts
    name, path, port = _start(bench, label)
    first = first and label != "make run"
    bench.load(
        port, path, NOOP, total=counts.warmup, clients=counts.clients, label=f"{label} warm-up"
    )
    before = _api_rss(bench, name)
    cpu = tree_cpu_seconds(bench.procs.pid(name))
    with bench.profiling("submit", name) if first else nullcontext():
        timed = bench.load(
            port,
            path,
            NOOP,
            total=counts.single,
            clients=counts.clients,
            label=f"{label} single-job submissions",
        )
    cpu_ms = (tree_cpu_seconds(bench.procs.pid(name)) - cpu) * 1000 / max(timed.requests, 1)
    bench.say(
        f"{label}: {timed.rate:,.0f} jobs/s, p99 {timed.percentile(99):.1f} ms, "
        f"{cpu_ms:.2f} ms CPU per request (the load generator used "
        f"{timed.cpu / timed.elapsed:.0%} of a core)"
    )
    growth = _memory_run(bench, label, name, port, path, before) if first else None
    bench.stop(name)
    return _Run(timed, cpu_ms, growth)


def _memory_run(
    bench: Bench, label: str, name: str, port: int, path: str, before: dict[int, float]
) -> float:
    """Submit up to ``counts.memory`` in all; returns the RSS growth since ``before``."""
    counts = bench.opts.counts
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
    return growth


def _best(runs: list[_Run]) -> _Run:
    """The fastest round: noise from other load on the machine only ever slows a run down."""
    return max(runs, key=lambda r: r.timed.rate)


def submission(bench: Bench) -> None:
    rounds = bench.opts.counts.rounds
    runs: dict[str, list[_Run]] = {label: [] for label in SIDES}
    for index in range(rounds):
        for label in SIDES:
            runs[label].append(_single(bench, label, first=index == 0))
    if rounds > 1:
        bench.report.notes.append(
            f"single-job submission: best of {rounds} alternating rounds per side; "
            + "; ".join(
                f"{label} " + ", ".join(f"{r.timed.rate:,.0f}" for r in rs) + " jobs/s"
                for label, rs in runs.items()
            )
        )
    best_platform, best_baseline = _best(runs["Draconic"]), _best(runs["baseline"])
    platform_growth = runs["Draconic"][0].growth or 0.0
    baseline_growth = runs["baseline"][0].growth or 0.0
    platform_cpu, baseline_cpu = best_platform.cpu_ms, best_baseline.cpu_ms
    platform, baseline = best_platform.timed, best_baseline.timed
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
    add(Figure("  API CPU per submission (gunicorn workers)", platform_cpu, baseline_cpu, "ms"))
    _make_run_figures(bench, _best(runs["make run"]), best_platform)
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


def _make_run_figures(bench: Bench, make_run: _Run, production: _Run) -> None:
    """make run's daphne beside production's gunicorn, measured in the same rounds."""
    clients, add = bench.opts.counts.clients, bench.report.add
    timed, prod = make_run.timed, production.timed
    label = "production"
    add(
        Figure(
            f"make run submit (daphne, REST + WebSocket on one port), {clients} clients",
            timed.rate,
            prod.rate,
            "jobs/s",
            ">= 80% of production",
            ratio_at_least(0.8),
            baseline_label=label,
        )
    )
    add(
        Figure(
            "  latency p99", timed.percentile(99), prod.percentile(99), "ms", baseline_label=label
        )
    )
    add(
        Figure(
            "  API CPU per submission",
            make_run.cpu_ms,
            production.cpu_ms,
            "ms",
            baseline_label=label,
        )
    )


def _batch_rate(bench: Bench, body: dict[str, Any], *, baseline: bool) -> float:
    counts = bench.opts.counts
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
    bench.say(f"{label}: {rate:,.0f} jobs/s in batches, {result.percentile(50):.0f} ms per batch")
    bench.stop("baseline-api" if baseline else "api")
    return rate


def batch(bench: Bench) -> None:
    """Batches of ``batch_size`` jobs with dependencies from ``batch_clients`` clients; best
    of ``rounds`` alternating rounds per side."""
    counts = bench.opts.counts
    body = batch_body(counts.batch_size)
    rates: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(counts.rounds):
        for baseline in (False, True):
            rates[baseline].append(_batch_rate(bench, body, baseline=baseline))
    bench.report.add(
        Figure(
            f"batch submit ({counts.batch_size:,} jobs with deps per request)",
            max(rates[False]),
            max(rates[True]),
            "jobs/s",
            ">= 10,000 jobs/s",
            at_least(10_000),
        )
    )
    bench.between_phases()
