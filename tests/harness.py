"""The platform harness: real process groups for the end-to-end tests, the chaos run and the
bench.

``Supervisor`` is the one owner of child processes. Each child runs in its own session (so a
signal reaches a Celery worker's pool children too), logs to ``<log_dir>/<name>.log`` and is
always ended by ``stop_all`` (SIGTERM to the group, then SIGKILL). The command of each child is
remembered, so ``restart`` brings a killed one back and ``revive`` restarts the ones that exited
by themselves, as a supervisor of a deployment would.

``process_env`` points a child at this test run's database and Redis; ``free_port`` and
``wait_until`` / ``wait_http`` are the only copies of those helpers. ``bench`` imports this
module; nothing under ``tests`` imports ``bench``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SDK_SRC = ROOT / "sdk" / "src"
QUEUES = "critical,high,normal,low"

#: Where ``free_port`` looks first: the ports of this range are the tests' and the servers'
#: of this machine leave them alone.
#: ``DRACONIC_TEST_PORT_BASE`` moves it, for runs that share the machine with other runs.
PORT_BASE = int(os.environ.get("DRACONIC_TEST_PORT_BASE", "18150"))


def free_port(start: int = PORT_BASE, taken: set[int] | None = None) -> int:
    """The first port from ``start`` on which nothing listens and that is not in ``taken``
    (which it joins, so that successive calls with the same set return different ports)."""
    for port in range(start, start + 100):
        if taken is not None and port in taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        if taken is not None:
            taken.add(port)
        return port
    raise RuntimeError(f"no free port in {start}-{start + 99}")


def process_env(**extra: str) -> dict[str, str]:
    """The environment of a platform process pointed at this test run's database and Redis."""
    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        MAX_CPU_UNITS=str(settings.MAX_CPU_UNITS),
        MAX_MEMORY_MB=str(settings.MAX_MEMORY_MB),
        DRACONIC_LEASE_SECONDS=str(settings.DRACONIC_LEASE_SECONDS),
        DRACONIC_RETRY_BASE_SECONDS=str(settings.DRACONIC_RETRY_BASE_SECONDS),
        DRACONIC_RETRY_MAX_SECONDS=str(settings.DRACONIC_RETRY_MAX_SECONDS),
        DRACONIC_AGING_SECONDS=str(settings.DRACONIC_AGING_SECONDS),
        DRACONIC_SCHEDULER_TICK_SECONDS="0.2",
        DRACONIC_EXPORT_DIR=str(settings.DRACONIC_EXPORT_DIR),
        EMAIL_FILE_PATH=str(settings.EMAIL_FILE_PATH),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    # After any path the caller gives: the test run's own PYTHONPATH, then this tree's
    # draconic_sdk (the server imports its job-type core), whatever copy the environment's
    # editable install points at.
    paths = [*extra.get("PYTHONPATH", "").split(os.pathsep)]
    paths += [*os.environ.get("PYTHONPATH", "").split(os.pathsep), str(SDK_SRC)]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in paths if p))
    return env


def worker_argv(
    name: str, *, concurrency: int = 2, queues: str = QUEUES, heartbeat: bool = False
) -> list[str]:
    """A Celery worker of the platform. Without ``heartbeat`` it sends no worker heartbeats
    (one event less per second and per worker; the tests' workers need none)."""
    argv = [sys.executable, "-m", "celery", "-A", "draconic", "worker", "-Q", queues]
    argv += ["-c", str(concurrency), "-n", f"{name}@%h", "-l", "INFO"]
    argv += ["--without-gossip", "--without-mingle"]
    return argv if heartbeat else [*argv, "--without-heartbeat"]


def scheduler_argv() -> list[str]:
    return [sys.executable, "manage.py", "scheduler"]


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class Supervisor:
    """Named child process groups.

    ``env`` is the environment of every child; when it is ``None`` each child gets
    ``process_env()`` (this test run's database and Redis) at its start. ``crashes`` lists the
    children ``revive`` found exited by themselves.
    """

    def __init__(self, log_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.log_dir = log_dir
        self.env = dict(env) if env is not None else None
        self.commands: dict[str, tuple[list[str], dict[str, str]]] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.crashes: list[str] = []

    def environment(self, **extra: str) -> dict[str, str]:
        if self.env is None:
            return process_env(**extra)
        return {**self.env, **extra}

    def start(
        self, name: str, argv: list[str], env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` as ``name`` in a new session, in the repository's root."""
        self.commands[name] = (argv, dict(env) if env is not None else self.environment())
        return self._spawn(name)

    def _spawn(self, name: str) -> subprocess.Popen[bytes]:
        argv, env = self.commands[name]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{name}.log", "ab") as log:  # the child keeps its own copy
            proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def start_worker(
        self,
        name: str = "worker",
        *,
        concurrency: int = 2,
        queues: str = QUEUES,
        heartbeat: bool = False,
        **env: str,
    ) -> subprocess.Popen[bytes]:
        argv = worker_argv(name, concurrency=concurrency, queues=queues, heartbeat=heartbeat)
        return self.start(name, argv, self.environment(**env))

    def start_scheduler(self, name: str = "scheduler", **env: str) -> subprocess.Popen[bytes]:
        return self.start(name, scheduler_argv(), self.environment(**env))

    def start_web(self, name: str = "web", **env: str) -> str:
        """daphne serving ``draconic.asgi`` (REST, WebSocket) on a free port, the way
        ``make run`` serves it; returns its base URL once ``/healthz`` answers."""
        port = free_port()
        argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
        proc = self.start(name, [*argv, "draconic.asgi:application"], self.environment(**env))
        base = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: _answers(base + "/healthz") or proc.poll() is not None,
            timeout=120,
            interval=0.2,
            message=f"{name} to serve {base}",
        )
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited at start-up:\n{self.logs()}")
        return base

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def check(self, name: str) -> None:
        """Raise if ``name`` exited (with the end of its log)."""
        proc = self.procs[name]
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def kill(self, name: str, sig: int = signal.SIGKILL, timeout: float = 20.0) -> None:
        """Signal ``name``'s whole process group (a worker's main process and its pool
        children), wait for it, and SIGKILL what is left of the group."""
        proc = self.procs.pop(name)
        _signal_group(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)
        _signal_group(proc.pid, signal.SIGKILL)  # pool children left behind, if any

    def restart(self, name: str, sig: int = signal.SIGKILL) -> subprocess.Popen[bytes]:
        """Kill ``name`` (if running) with ``sig`` and start its command again."""
        if name in self.procs:
            self.kill(name, sig)
        return self._spawn(name)

    def stop(self, name: str, timeout: float = 20.0) -> None:
        """End ``name`` with SIGTERM (SIGKILL after ``timeout``); nothing if it is not running."""
        if name in self.procs:
            self.kill(name, signal.SIGTERM, timeout)

    def stop_all(self) -> None:
        for name in list(self.procs):
            try:
                self.stop(name)
            except Exception as exc:  # keep stopping the others
                print(f"  could not stop {name}: {exc}", file=sys.stderr)  # noqa: T201

    def revive(self) -> list[tuple[str, int]]:
        """Restart every child that exited by itself and record it in ``crashes``; returns
        ``(name, exit code)`` of each one restarted now."""
        exited = [(n, p.returncode) for n, p in self.procs.items() if p.poll() is not None]
        for name, code in exited:
            self.crashes.append(f"{name} exited with {code}")
            self._spawn(name)
        return exited

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def logs(self) -> str:
        """The end of every child's log, for an assertion message."""
        return "\n".join(
            f"--- {p.name} ---\n{p.read_text(errors='replace')[-4000:]}"
            for p in sorted(self.log_dir.glob("*.log"))
        )


def wait_until(
    predicate: Callable[[], Any],
    *,
    timeout: float = 60.0,
    interval: float = 0.05,
    message: str = "",
) -> Any:
    """Poll ``predicate`` until it returns something truthy. The timeout is a hang guard for a
    broken platform, not a performance assertion: it is generous on purpose."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting: {message or predicate}")
        time.sleep(interval)


def wait_http(port: int, path: str = "/healthz", timeout: float = 60.0) -> None:
    """Block until ``GET path`` answers 200 on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing answered on port {port} within {timeout:.0f}s")
        time.sleep(0.2)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310  (local server)
            return bool(response.status == 200)
    except OSError:
        return False


def send(request: urllib.request.Request, timeout: float = 30) -> tuple[int, Any]:
    """Send ``request`` to a local server; its status and its body (JSON decoded, else text).
    An HTTP error status is an answer, not an exception."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")
