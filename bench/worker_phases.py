"""Execution: end-to-end drain of noop jobs, dispatch and dependency-release latency over a
chain, and idle worker memory; then the same for raw Celery on the same broker."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench import store
from bench.load import percentile
from bench.procs import server_cpu_seconds, tree_cpu_seconds, tree_rss_mb
from bench.report import Figure, at_most, below, ratio_at_least
from bench.runner import NOOP, Bench

NO_PROGRESS_TIMEOUT = 120.0


def wait_for(
    bench: Bench, label: str, total: int, done: Callable[[], int], procs: tuple[str, ...]
) -> None:
    """Poll ``done()`` every 0.2 s until it reaches ``total``; a hang guard raises when it
    stops moving for two minutes or a process died."""
    last, moved = -1, time.monotonic()
    while True:
        count = done()
        if count != last:
            last, moved = count, time.monotonic()
        bench.progress(f"{label}: {count:,}/{total:,} completed")
        if count >= total:
            return
        for name in procs:
            bench.procs.check(name)
        if time.monotonic() - moved > NO_PROGRESS_TIMEOUT:
            raise TimeoutError(f"{label}: stuck at {count:,}/{total:,}; see bench/results/logs/")
        time.sleep(0.2)


def _batch_counts(batch_ids: list[str]) -> int:
    ((done, dead),) = store.sql(
        "SELECT count(*) FILTER (WHERE status = 'completed'), "
        "count(*) FILTER (WHERE status IN ('failed', 'cancelled')) "
        "FROM jobs_job WHERE batch_id = ANY(%s::uuid[])",
        [batch_ids],
    )
    if dead:
        raise RuntimeError(f"{dead} benchmark jobs failed or were cancelled")
    return int(done)


PLATFORM = ("api", "worker", "scheduler")


def _platform_ready(bench: Bench, port: int) -> None:
    """One job through the whole platform: API, scheduler, worker are up and warm."""
    job = bench.post_json(port, "/jobs/", NOOP)
    wait_for(
        bench,
        "warm-up job",
        1,
        lambda: int(
            store.sql(
                "SELECT count(*) FROM jobs_job WHERE id = %s AND status = 'completed'", [job["id"]]
            )[0][0]
        ),
        PLATFORM,
    )


def execution(bench: Bench) -> None:
    """End-to-end and latency figures, platform then raw Celery, in ``rounds`` alternating
    rounds; each side's fastest round counts (noise only ever slows a run down), with the
    latencies measured in that round."""
    step = bench.step
    from bench.procrastinate_run import procrastinate_e2e

    runs: dict[str, list[dict[str, Any]]] = {"Draconic": [], "raw Celery": [], "procrastinate": []}
    for _ in range(bench.opts.counts.rounds):
        bench.step = step
        runs["Draconic"].append(platform_e2e(bench))
        bench.step = step.replace("execution", "raw Celery")
        runs["raw Celery"].append(celery_baseline(bench))
        bench.step = step.replace("execution", "procrastinate")
        runs["procrastinate"].append(procrastinate_e2e(bench))
    bench.step = step
    if len(runs["Draconic"]) > 1:
        bench.report.notes.append(
            f"end-to-end: best of {len(runs['Draconic'])} alternating rounds per side; "
            + "; ".join(
                f"{side} " + ", ".join(f"{r['rate']:,.0f}" for r in rs) + " jobs/s"
                for side, rs in runs.items()
            )
        )
    best = {side: max(rs, key=lambda r: r["rate"]) for side, rs in runs.items()}
    add_figures(bench, best["Draconic"], best["raw Celery"])
    add_procrastinate_figures(bench, best["Draconic"], best["procrastinate"])


def platform_e2e(bench: Bench) -> dict[str, Any]:
    counts = bench.opts.counts
    port = bench.start_api()
    worker_pid = bench.start_worker()
    bench.start_scheduler()
    _platform_ready(bench, port)
    time.sleep(2)
    idle = tree_rss_mb(worker_pid)
    bench.say(f"idle worker RSS (main + children): {idle:.0f} MiB")
    body = {"jobs": [{"type": "noop", "payload": {"n": i}} for i in range(1000)]}
    cpu, servers = _cpu(bench, PLATFORM), server_cpu_seconds()
    started = time.time()
    with bench.profiling("e2e", *PLATFORM):
        batch_ids = [
            bench.post_json(port, "/jobs/batch/", body)["batch_id"]
            for _ in range(counts.e2e // 1000)
        ]
        total = len(batch_ids) * 1000
        wait_for(bench, "end-to-end", total, lambda: _batch_counts(batch_ids), PLATFORM)
    ((ended,),) = store.sql(
        "SELECT max(completed_at) FROM jobs_job WHERE batch_id = ANY(%s::uuid[])", [batch_ids]
    )
    rate = total / (ended.timestamp() - started)
    cpu_ms = {n: (c - cpu[n]) * 1000 / total for n, c in _cpu(bench, PLATFORM).items()}
    server_ms = _per_job(servers, total)
    bench.say(
        f"end-to-end: {rate:,.0f} jobs/s; CPU ms per job: "
        + ", ".join(f"{n} {v:.2f}" for n, v in {**cpu_ms, **server_ms}.items())
    )
    dispatch, release = platform_chain(bench, port)
    bench.between_phases()
    return {
        "rate": rate,
        "idle": idle,
        "dispatch": dispatch,
        "release": release,
        "cpu": sum(cpu_ms.values()),
        "cpu_parts": cpu_ms,
        "servers": server_ms,
    }


def _per_job(servers_before: dict[str, float], jobs: int) -> dict[str, float]:
    """CPU ms per job spent by the PostgreSQL and Redis servers since ``servers_before``."""
    return {n: (c - servers_before[n]) * 1000 / jobs for n, c in server_cpu_seconds().items()}


def _cpu(bench: Bench, names: tuple[str, ...]) -> dict[str, float]:
    return {name: tree_cpu_seconds(bench.procs.pid(name)) for name in names}


def platform_chain(bench: Bench, port: int) -> tuple[list[float], list[float]]:
    """A chain submitted as one batch: each job depends on the one before. Returns dispatch
    latencies (queued -> running) and release latencies (parent completed -> child running),
    in seconds."""
    n = bench.opts.counts.chain
    body = {
        "jobs": [
            {"key": f"c{i}", "type": "noop", "depends_on": [f"c{i - 1}"] if i else []}
            for i in range(n)
        ]
    }
    reply = bench.post_json(port, "/jobs/batch/", body)
    wait_for(bench, f"chain of {n}", n, lambda: _batch_counts([reply["batch_id"]]), PLATFORM)
    rows = {
        str(r[0]): r[1:]
        for r in store.sql(
            "SELECT id, queued_at, started_at, completed_at FROM jobs_job WHERE batch_id = %s",
            [reply["batch_id"]],
        )
    }
    chain = [rows[reply["keys"][f"c{i}"]] for i in range(n)]
    dispatch = [(started - queued).total_seconds() for queued, started, _ in chain]
    release = [(chain[i][1] - chain[i - 1][2]).total_seconds() for i in range(1, n)]
    bench.say(
        f"chain: dispatch p50 {percentile(dispatch, 50) * 1000:.1f} ms, "
        f"release p50 {percentile(release, 50) * 1000:.1f} ms"
    )
    return dispatch, release


def celery_baseline(bench: Bench) -> dict[str, Any]:
    from bench import celery_baseline as cb

    counts = bench.opts.counts
    client = bench.redis
    pid = bench.start_worker(baseline=True)
    done_key, last_key, timed_key = f"{cb.PREFIX}:done", f"{cb.PREFIX}:last", f"{cb.PREFIX}:timed"
    cb.noop.apply_async()
    wait_for(
        bench,
        "celery warm-up task",
        1,
        lambda: int(client.get(done_key) or 0),
        ("celery-baseline",),
    )
    time.sleep(2)
    idle = tree_rss_mb(pid)
    bench.say(f"raw Celery idle worker RSS: {idle:.0f} MiB")
    client.delete(done_key, last_key)
    cpu, servers = tree_cpu_seconds(pid), server_cpu_seconds()
    started = time.time()
    with bench.profiling("e2e", "celery-baseline"):
        publishing = time.process_time()
        with cb.app.producer_or_acquire() as producer:
            for _ in range(counts.e2e):
                cb.noop.apply_async(producer=producer)
        publishing = time.process_time() - publishing
        wait_for(
            bench,
            "raw Celery drain",
            counts.e2e,
            lambda: int(client.get(done_key) or 0),
            ("celery-baseline",),
        )
    rate = counts.e2e / (float(client.get(last_key) or 0) - started)
    cpu_ms = (tree_cpu_seconds(pid) - cpu + publishing) * 1000 / counts.e2e
    server_ms = _per_job(servers, counts.e2e)
    bench.say(
        f"raw Celery: {rate:,.0f} tasks/s; CPU ms per task: worker + publisher {cpu_ms:.2f}, "
        + ", ".join(f"{n} {v:.2f}" for n, v in server_ms.items())
    )
    release = _celery_chain(bench, cb, timed_key)
    dispatch = _celery_publish_to_start(bench, cb, timed_key)
    bench.between_phases()
    return {
        "rate": rate,
        "idle": idle,
        "dispatch": dispatch,
        "release": release,
        "cpu": cpu_ms,
        "servers": server_ms,
    }


def _timings(bench: Bench, key: str) -> dict[int, tuple[float, float, float]]:
    raw = bench.redis.hgetall(key)
    return {int(k): tuple(float(x) for x in v.split()) for k, v in raw.items()}  # type: ignore[misc]


def _celery_chain(bench: Bench, cb: Any, key: str) -> list[float]:
    """``chain(timed, timed, ...)``: child start minus parent end, in seconds."""
    from celery import chain

    n = bench.opts.counts.chain
    bench.redis.delete(key)
    chain(*(cb.timed.si(i) for i in range(n))).apply_async()
    wait_for(
        bench,
        f"raw Celery chain of {n}",
        n,
        lambda: int(bench.redis.hlen(key)),
        ("celery-baseline",),
    )
    t = _timings(bench, key)
    return [t[i][1] - t[i - 1][2] for i in range(1, n)]


def _celery_publish_to_start(bench: Bench, cb: Any, key: str) -> list[float]:
    """One task at a time on an idle worker: publish -> start, in seconds."""
    n = bench.opts.counts.chain
    bench.redis.delete(key)
    for i in range(n):
        cb.timed.apply_async(args=[i, time.time()])
        deadline = time.monotonic() + 60
        while not bench.redis.hexists(key, str(i)):
            if time.monotonic() > deadline:
                raise TimeoutError("raw Celery task did not start within 60 s")
            time.sleep(0.0005)
    t = _timings(bench, key)
    return [t[i][1] - t[i][0] for i in range(n)]


def add_figures(bench: Bench, platform: dict[str, Any], celery: dict[str, Any]) -> None:
    add = bench.report.add
    n = bench.opts.counts.e2e
    ms = 1000

    def p(values: list[float], q: float) -> float:
        return percentile(values, q) * ms

    add(
        Figure(
            f"end-to-end noop, {n:,} jobs (submit -> all completed)",
            platform["rate"],
            celery["rate"],
            "jobs/s",
            ">= 60% of raw Celery",
            ratio_at_least(0.60),
        )
    )
    parts = ", ".join(f"{n} {v:.2f} ms" for n, v in platform["cpu_parts"].items())
    bench.report.notes.append(f"end-to-end CPU per job by process: {parts}")
    add(
        Figure(
            "  CPU per job (api + worker + scheduler; Celery: worker + publisher)",
            platform["cpu"],
            celery["cpu"],
            "ms",
        )
    )
    add(
        Figure(
            "  CPU per job of the PostgreSQL and Redis servers",
            sum(platform["servers"].values()),
            sum(celery["servers"].values()),
            "ms",
            "<= 1.0 ms",
            at_most(1.0),
        )
    )
    add(
        Figure(
            "dispatch latency p50 (queued -> running)",
            p(platform["dispatch"], 50),
            p(celery["dispatch"], 50),
            "ms",
            "< 10 ms",
            below(10),
        )
    )
    add(
        Figure("dispatch latency p99", p(platform["dispatch"], 99), p(celery["dispatch"], 99), "ms")
    )
    add(
        Figure(
            "dependency release p50 (parent done -> child running)",
            p(platform["release"], 50),
            p(celery["release"], 50),
            "ms",
            "< 15 ms",
            below(15),
        )
    )
    add(
        Figure(
            "dependency release p99",
            p(platform["release"], 99),
            p(celery["release"], 99),
            "ms",
            "< 50 ms",
            below(50),
        )
    )
    add(
        Figure("idle worker RSS (main + 2 pool processes)", platform["idle"], celery["idle"], "MiB")
    )


def add_procrastinate_figures(
    bench: Bench, platform: dict[str, Any], procrastinate: dict[str, Any]
) -> None:
    """Draconic beside procrastinate, the PostgreSQL queue Django teams pick instead."""
    label = "procrastinate"
    bench.report.add(
        Figure(
            f"end-to-end noop, {bench.opts.counts.e2e:,} jobs, vs procrastinate",
            platform["rate"],
            procrastinate["rate"],
            "jobs/s",
            ">= 1.5x procrastinate",
            ratio_at_least(1.5),
            baseline_label=label,
        )
    )
    bench.report.add(
        Figure(
            "  CPU per job (procrastinate: workers + deferrer)",
            platform["cpu"],
            procrastinate["cpu"],
            "ms",
            baseline_label=label,
        )
    )
    bench.report.add(
        Figure(
            "  CPU per job of the PostgreSQL and Redis servers (procrastinate)",
            sum(platform["servers"].values()),
            sum(procrastinate["servers"].values()),
            "ms",
            baseline_label=label,
        )
    )
