"""The bench's shared context: options, the processes it started, the API token, progress
output, and helpers to start the platform's and the baselines' processes."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis

from bench import store
from bench.config import RESULTS, Options, process_env
from bench.load import LoadResult, build_request, run_load
from bench.report import Report
from tests.harness import VENV_BIN, Supervisor, wait_http

QUEUES = "critical,high,normal,low"
NOOP = {
    "type": "noop",
    "priority": "normal",
    "payload": {"n": 1},
    "resource_requirements": {"cpu_units": 1, "memory_mb": 128},
}


@dataclass
class Bench:
    opts: Options
    report: Report
    redis: redis.Redis
    procs: Supervisor = field(default_factory=lambda: Supervisor(RESULTS / "logs"))
    token: str = ""
    owner_id: int = 0
    step: str = ""
    _last_progress: float = 0.0

    # --- output --------------------------------------------------------------------------
    def say(self, message: str) -> None:
        print(f"{self.step} {message}", flush=True)

    def progress(self, message: str, *, force: bool = False) -> None:
        """A progress line at most every 2 seconds."""
        now = time.monotonic()
        if force or now - self._last_progress >= 2.0:
            self._last_progress = now
            self.say(message)

    # --- setup ---------------------------------------------------------------------------
    def create_token(self) -> None:
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        out = io.StringIO()
        call_command("createapitoken", "bench", stdout=out)
        self.token = out.getvalue().strip()
        self.owner_id = get_user_model().objects.get(username="bench").pk

    # --- processes -----------------------------------------------------------------------
    @property
    def api_port(self) -> int:
        return self.opts.port

    @property
    def baseline_port(self) -> int:
        return self.opts.port + 1

    def start_api(self, *, baseline: bool = False) -> int:
        """gunicorn with 2 sync workers, as production serves REST; returns its port."""
        port = self.baseline_port if baseline else self.api_port
        module = "bench.baseline.wsgi" if baseline else "draconic.wsgi"
        settings = "bench.baseline.settings" if baseline else "draconic.settings"
        name = "baseline-api" if baseline else "api"
        self.procs.start(
            name,
            [
                str(VENV_BIN / "gunicorn"),
                "-w",
                "2",
                "-b",
                f"127.0.0.1:{port}",
                f"{module}:application",
            ],
            process_env(self.opts, settings_module=settings),
        )
        wait_http(port)
        return port

    def start_worker(
        self,
        *,
        baseline: bool = False,
        concurrency: int = 2,
        settings: Mapping[str, str] | None = None,
    ) -> int:
        """A Celery worker with the shipped options, ``concurrency`` pool processes (and
        ``settings`` over the bench's);
        returns the main process's pid."""
        app = "bench.celery_baseline" if baseline else "draconic"
        name = "celery-baseline" if baseline else "worker"
        env = {**process_env(self.opts), **(settings or {})}
        if baseline:  # raw Celery: without it, Celery's Django fix-up would load Django
            del env["DJANGO_SETTINGS_MODULE"]
        proc = self.procs.start(
            name,
            [
                str(VENV_BIN / "celery"),
                "-A",
                app,
                "worker",
                "-Q",
                QUEUES,
                "-c",
                str(concurrency),
                "--without-gossip",
                "--without-mingle",
                "-l",
                "WARNING",
                "-n",
                f"{name}@%h",
            ],
            env,
        )
        return proc.pid

    def start_scheduler(self, settings: Mapping[str, str] | None = None) -> None:
        import sys

        env = {**process_env(self.opts), **(settings or {})}
        self.procs.start("scheduler", [sys.executable, "manage.py", "scheduler"], env)

    def stop(self, *names: str) -> None:
        for name in names:
            self.procs.stop(name)

    def between_phases(self) -> None:
        """No process running, no unfinished job, an empty Redis database."""
        self.procs.stop_all()
        store.settle_leftovers()
        store.reset_redis(self.redis)

    @contextmanager
    def profiling(self, name: str, *procs: str) -> Iterator[None]:
        """With ``--profile``: sample the named processes (and their children) meanwhile."""
        if not self.opts.profile:
            yield
            return
        from bench.profile import Profiler

        profilers = [Profiler(f"{name}-{p}", self.procs.pid(p)) for p in procs]
        try:
            yield
        finally:
            for profiler in profilers:
                self.report.profiles.append((profiler.name, profiler.stop()))

    # --- HTTP ----------------------------------------------------------------------------
    def load(
        self, port: int, path: str, body: Any, *, total: int, clients: int, label: str
    ) -> LoadResult:
        raw = build_request("POST", port, path, self.token, body)
        result = run_load(
            port,
            raw,
            total=total,
            clients=clients,
            progress=lambda done: self.progress(f"{label}: {done:,}/{total:,} requests"),
        )
        bad = result.requests - result.ok + result.errors
        if bad:
            self.report.notes.append(
                f"{label}: {bad} of {total} requests failed {dict(result.statuses)}"
            )
            self.say(
                f"{label}: {bad} requests failed: {dict(result.statuses)} {result.last_body[:300]!r}"
            )
        return result

    def post_json(self, port: int, path: str, body: Any) -> dict[str, Any]:
        result = run_load(
            port, build_request("POST", port, path, self.token, body), total=1, clients=1
        )
        if result.ok != 1:
            raise RuntimeError(
                f"POST {path} failed: {dict(result.statuses)} {result.last_body[:500]!r}"
            )
        return dict(json.loads(result.last_body))
