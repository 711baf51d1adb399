"""The procrastinate baseline's run: its own database, its own worker processes, the same
no-op drain as Draconic's end-to-end figure (see ``bench.procrastinate_baseline``).

Draconic's bench worker is one Celery worker with two prefork processes, so procrastinate gets
two worker processes of concurrency 1 each: the same processes, the same jobs at once."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlparse, urlunparse

import psycopg2

from bench.config import Options, process_env
from bench.procs import server_cpu_seconds, tree_cpu_seconds
from bench.runner import Bench
from tests.harness import ROOT

SETTINGS = "bench.procrastinate_baseline.settings"
VENV = ROOT / "var" / "procrastinate-venv"
REQUIREMENTS = ROOT / "bench" / "procrastinate_baseline" / "requirements.txt"
PROCESSES = 2
NO_PROGRESS_TIMEOUT = 120.0


def database_url(opts: Options) -> str:
    url = urlparse(opts.database_url)
    return urlunparse(url._replace(path=f"/{opts.database_name}_procrastinate"))


def _admin(opts: Options, statement: str) -> None:
    url = urlparse(opts.database_url)
    conn = psycopg2.connect(urlunparse(url._replace(path="/postgres")))
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement)
    finally:
        conn.close()


def _env(opts: Options) -> dict[str, str]:
    env = process_env(opts, settings_module=SETTINGS)
    env["DATABASE_URL"] = database_url(opts)
    return env


def _query(opts: Options, statement: str) -> Any:
    conn = psycopg2.connect(database_url(opts))
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement)
            return cursor.fetchone()
    finally:
        conn.close()


def python(bench: Bench) -> str:
    """The baseline's interpreter: its own virtualenv, made (or brought up to date) here."""
    marker = VENV / ".installed"
    if not marker.exists() or marker.read_text() != REQUIREMENTS.read_text():
        bench.say(f"installing procrastinate into {VENV} (first run only; about a minute)")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run(
            [
                str(VENV / "bin" / "pip"),
                "install",
                "-q",
                "--disable-pip-version-check",
                "-r",
                str(REQUIREMENTS),
            ],
            check=True,
        )
        marker.write_text(REQUIREMENTS.read_text())
    return str(VENV / "bin" / "python")


def prepare(opts: Options, interpreter: str) -> None:
    """A fresh database with procrastinate's schema, from its own Django migrations."""
    name = f"{opts.database_name}_procrastinate"
    _admin(opts, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(opts, f'CREATE DATABASE "{name}"')
    subprocess.run(
        [interpreter, "-m", "django", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=_env(opts),
        check=True,
    )


def drop(opts: Options) -> None:
    _admin(opts, f'DROP DATABASE IF EXISTS "{opts.database_name}_procrastinate" WITH (FORCE)')


def procrastinate_e2e(bench: Bench) -> dict[str, Any]:
    """Drain ``counts.e2e`` no-op jobs; returns the rate and CPU per job (worker processes +
    the deferring process; and the PostgreSQL and Redis servers')."""
    opts, total = bench.opts, bench.opts.counts.e2e
    interpreter = python(bench)
    prepare(opts, interpreter)
    env = _env(opts)
    worker = [interpreter, "-m", "django", "procrastinate", "worker", "--concurrency", "1"]
    names = [f"procrastinate-{i}" for i in range(PROCESSES)]
    for name in names:
        bench.procs.start(name, worker, env)
    time.sleep(3)  # the workers connect and listen before the first job is deferred
    cpu = {n: tree_cpu_seconds(bench.procs.pid(n)) for n in names}
    servers = server_cpu_seconds()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    subprocess.run(
        [interpreter, "-m", "bench.procrastinate_baseline.defer", str(total)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    deferring = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    _wait(bench, opts, total)
    (ended,) = _query(
        opts,
        "SELECT extract(epoch FROM max(at)) FROM procrastinate_events WHERE type = 'succeeded'",
    )
    rate = total / (float(ended) - started)
    worker_s = sum(tree_cpu_seconds(bench.procs.pid(n)) - cpu[n] for n in names)
    cpu_ms = (worker_s + deferring) * 1000 / total
    server_ms = {n: (c - servers[n]) * 1000 / total for n, c in server_cpu_seconds().items()}
    bench.stop(*names)
    drop(opts)
    bench.say(
        f"procrastinate: {rate:,.0f} jobs/s; CPU ms per job: workers + deferrer {cpu_ms:.2f}, "
        + ", ".join(f"{n} {v:.2f}" for n, v in server_ms.items())
    )
    return {"rate": rate, "cpu": cpu_ms, "servers": server_ms}


def _wait(bench: Bench, opts: Options, total: int) -> None:
    """Until every job succeeded; fails if none finished for ``NO_PROGRESS_TIMEOUT`` s."""
    done, progressed = 0, time.monotonic()
    while done < total:
        time.sleep(0.2)
        (now,) = _query(opts, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'")
        if now > done:
            done, progressed = now, time.monotonic()
            bench.progress(f"procrastinate drain: {done:,}/{total:,}")
        elif time.monotonic() - progressed > NO_PROGRESS_TIMEOUT:
            raise RuntimeError(
                f"procrastinate drained {done} of {total} jobs and then stopped; see the "
                "procrastinate-*.log files of the bench"
            )
