"""``make run`` in the bench: the Procfile's own commands on ``make run``'s settings, measured
beside the production path in the same run (docs/performance.md).

Two figures: single-job submissions to the Procfile's ``web`` line (daphne serving REST and
the WebSocket on one port) beside gunicorn's, and the completion rate of 2-second jobs under
the whole of ``make run`` (honcho with the Procfile, as ``make run`` starts it) beside the
production processes with a worker sized for them.
"""

from __future__ import annotations

import time
from typing import Any

from bench import store
from bench.config import Options, process_env
from bench.report import Figure, ratio_at_least
from bench.runner import Bench
from bench.worker_phases import wait_for
from tests.harness import ROOT, VENV_BIN, free_port, wait_http

#: Settings the bench gives its production processes that ``make run`` leaves at their
#: defaults (DEBUG on, INFO logs, persistent connections' default, the laptop's capacity).
PRODUCTION_ONLY = (
    "DEBUG",
    "SECRET_KEY",
    "DB_CONN_MAX_AGE",
    "LOG_LEVEL",
    "MAX_CPU_UNITS",
    "MAX_MEMORY_MB",
)
#: The 2-second jobs of the end-to-end figure, and the production worker's slots for them
#: (the default capacity's 8 CPU units, so both sides may run as many at once).
SLOW_JOB = {"type": "noop", "payload": {"seconds": 2}}
PRODUCTION_SLOTS = 8


def make_run_env(opts: Options, **extra: str) -> dict[str, str]:
    """``make run``'s environment: the bench's database and Redis, its rate limit (else the
    load would measure the 6,000/min throttle), and ``make run``'s defaults for the rest."""
    env = process_env(opts)
    for name in PRODUCTION_ONLY:
        env.pop(name, None)
    return {**env, **extra}


def procfile_line(name: str) -> list[str]:
    """The Procfile's command for ``name``, run as honcho runs it (a shell, in the root)."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return ["bash", "-c", line.split(":", 1)[1].strip()]
    raise LookupError(f"no {name!r} line in the Procfile")


def start_web(bench: Bench) -> int:
    """The Procfile's ``web`` line alone (the submit figure needs no worker)."""
    port = bench.api_port
    bench.procs.start(
        "make-run-web",
        procfile_line("web"),
        make_run_env(bench.opts, PORT=str(port)),
    )
    wait_http(port, timeout=120)
    return port


def start_make_run(bench: Bench) -> int:
    """Every process of ``make run``: honcho with the Procfile, as the Makefile runs it."""
    port, flower = bench.api_port, free_port(bench.opts.port + 2)
    argv = [str(VENV_BIN / "honcho"), "--no-prefix", "-e", "/dev/null", "-f", "Procfile"]
    env = make_run_env(bench.opts, FLOWER_PORT=str(flower))
    bench.procs.start("make-run", [*argv, "start", "-p", str(port)], env)
    wait_http(port, timeout=180)
    return port


def slow_jobs(bench: Bench) -> None:
    """2-second jobs through ``make run``'s defaults, then through the production processes,
    in alternating rounds; each side's best round counts."""
    rates: dict[str, list[float]] = {"make run": [], "production": []}
    for _ in range(bench.opts.counts.rounds):
        rates["make run"].append(_slow_round(bench, make_run=True))
        rates["production"].append(_slow_round(bench, make_run=False))
    n = bench.opts.counts.slow
    bench.report.add(
        Figure(
            f"make run defaults: {n} jobs of 2 s (submit -> all completed)",
            max(rates["make run"]),
            max(rates["production"]),
            "jobs/s",
            ">= 80% of production",
            ratio_at_least(0.8),
            baseline_label=f"production, worker -c {PRODUCTION_SLOTS}",
        )
    )
    bench.report.notes.append(
        "2-second jobs: "
        + "; ".join(
            f"{side} " + ", ".join(f"{r:.2f}" for r in rs) + " jobs/s" for side, rs in rates.items()
        )
    )


def _slow_round(bench: Bench, *, make_run: bool) -> float:
    side = "make run" if make_run else "production"
    names: tuple[str, ...] = ("make-run",) if make_run else ("api", "worker", "scheduler")
    if make_run:
        port = start_make_run(bench)
    else:
        port = bench.start_api()
        bench.start_worker(concurrency=PRODUCTION_SLOTS)
        bench.start_scheduler()
    _run_one(bench, port, {"type": "noop"}, f"{side} warm-up job", names)
    n = bench.opts.counts.slow
    started = time.time()
    batch, peak = _run_batch(bench, port, n, names, side)
    ((ended,),) = store.sql("SELECT max(completed_at) FROM jobs_job WHERE batch_id = %s", [batch])
    rate = n / (float(ended.timestamp()) - started)
    bench.say(f"{side}: {rate:.2f} jobs/s of 2 s, at most {peak} running at once")
    bench.report.notes.append(f"2-second jobs, {side}: at most {peak} running at once")
    bench.between_phases()
    return rate


def _run_one(
    bench: Bench, port: int, job: dict[str, Any], label: str, names: tuple[str, ...]
) -> None:
    job_id = bench.post_json(port, "/jobs/", job)["id"]
    wait_for(bench, label, 1, lambda: _count("id = %s AND status = 'completed'", [job_id]), names)


def _run_batch(
    bench: Bench, port: int, n: int, names: tuple[str, ...], side: str
) -> tuple[str, int]:
    """Submit ``n`` slow jobs in one batch and wait for them; the batch and the most jobs
    seen running at once."""
    batch = bench.post_json(port, "/jobs/batch/", {"jobs": [SLOW_JOB] * n})["batch_id"]
    peak = 0

    def done() -> int:
        nonlocal peak
        peak = max(peak, _count("batch_id = %s AND status = 'running'", [batch]))
        return _count("batch_id = %s AND status = 'completed'", [batch])

    wait_for(bench, f"{side}: {n} jobs of 2 s", n, done, names)
    return batch, peak


def _count(where: str, params: list[Any]) -> int:
    return int(store.sql(f"SELECT count(*) FROM jobs_job WHERE {where}", params)[0][0])
