"""`make run`, the README's first command, brings up a working platform and stops cleanly.

It runs the real target (migrate, devsetup, honcho with daphne, a Celery worker, the
scheduler and Flower) against a fresh database, drives one job through it over HTTP the way
the README's curl examples do, then sends SIGTERM and checks that every process is gone.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from django.conf import settings
from psycopg2 import sql

from tests.harness import PORT_BASE as HARNESS_PORT_BASE
from tests.harness import ROOT, free_port, send, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

#: Ports of the platform under test: the first two free ones from here on (18310 unless
#: ``DRACONIC_TEST_PORT_BASE`` moves the harness's range, for runs sharing the machine).
PORT_BASE = HARNESS_PORT_BASE + 160


def _db_name() -> str:
    """The fresh database of `make run`: named after this run's test database, so that runs
    sharing the PostgreSQL server never drop each other's."""
    return f"{settings.DATABASES['default']['NAME']}_makerun"


def _admin_connection() -> Any:
    db = settings.DATABASES["default"]
    conn = psycopg2.connect(
        dbname="postgres",
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"] or "postgres",
        password=db["PASSWORD"] or None,
    )
    conn.autocommit = True
    return conn


def _drop_database() -> None:
    conn = _admin_connection()
    with conn.cursor() as cursor:
        cursor.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(_db_name()))
        )
    conn.close()


def _database_url() -> str:
    db = settings.DATABASES["default"]
    user = db["USER"] or "postgres"
    auth = f"{user}:{db['PASSWORD']}" if db["PASSWORD"] else user
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{_db_name()}"


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)"
        if fields[0] != "Z":
            table[int(entry.name)] = (int(fields[1]), fields[19])
    return table


def descendants(root: int) -> set[tuple[int, str]]:
    """(pid, start time) of ``root`` and every live process below it."""
    table = _process_table()
    found, frontier = set(), [root]
    while frontier:
        pid = frontier.pop()
        if pid in table:
            found.add((pid, table[pid][1]))
            frontier += [child for child, (parent, _) in table.items() if parent == pid]
    return found


def still_alive(processes: set[tuple[int, str]]) -> set[tuple[int, str]]:
    table = _process_table()
    return {(pid, start) for pid, start in processes if table.get(pid, (0, ""))[1] == start}


def cmdline(pid: int) -> str:
    """The command line of ``pid``, NUL-separated; "" if it has exited since it was listed."""
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_text(errors="replace")
    except OSError:
        return ""


class MakeRun:
    """`make run` in its own session, its output collected by a thread."""

    def __init__(self, port: int, flower_port: int) -> None:
        # `make run` as a developer types it: on manage.py's draconic.settings, not tests.settings.
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"FLOWER_BASIC_AUTH", "DJANGO_SETTINGS_MODULE"}
        }
        env.update(
            DATABASE_URL=_database_url(),
            REDIS_URL=settings.REDIS_URL,
            PORT=str(port),
            FLOWER_PORT=str(flower_port),
            PYTHONUNBUFFERED="1",
            DEBUG="true",
        )
        self.base = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            ["make", "run"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=True,
            errors="replace",
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)[-6000:]

    def token(self) -> str | None:
        match = re.search(r"API token: (\w+)", "".join(self.lines))
        return match.group(1) if match else None

    def request(
        self, method: str, path: str, body: Any = None, *, base: str | None = None
    ) -> tuple[int, Any]:
        """An HTTP request as the README's curl does it; returns (status, decoded body)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request((base or self.base) + path, data=data, method=method)  # noqa: S310
        req.add_header("Authorization", f"Token {self.token()}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        return send(req, timeout=10)

    def answers(self, path: str, *, base: str | None = None) -> bool:
        try:
            return self.request("GET", path, base=base)[0] == 200
        except OSError:  # not listening yet
            return False


@pytest.fixture
def make_run() -> Iterator[MakeRun]:
    _drop_database()
    taken: set[int] = set()
    port, flower_port = free_port(PORT_BASE, taken), free_port(PORT_BASE, taken)
    run = MakeRun(port, flower_port)
    run.flower = f"http://127.0.0.1:{flower_port}"  # type: ignore[attr-defined]
    try:
        yield run
    finally:
        if run.proc.poll() is None:  # the test failed before stopping it
            for pid, _ in still_alive(descendants(run.proc.pid)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            run.proc.wait(timeout=30)
        _drop_database()


def _flower_status(base: str, path: str, credentials: tuple[str, ...]) -> int:
    request = urllib.request.Request(base + path)  # noqa: S310  (local server)
    secret = base64.b64encode(":".join(credentials).encode()).decode()
    request.add_header("Authorization", f"Basic {secret}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def _celery_worker_main(processes: set[tuple[int, str]]) -> int:
    """The Celery worker's main process: the one whose parent is not a Celery worker."""
    table = _process_table()
    workers = {pid for pid, _ in processes if "celery" in cmdline(pid) and "worker" in cmdline(pid)}
    workers -= {pid for pid in workers if "draconic.supervise" in cmdline(pid)}
    (main,) = {pid for pid in workers if table[pid][0] not in workers}
    return main


def _websocket_handshake(port: int, token: str) -> str:
    """The status line daphne answers a WebSocket upgrade of /jobs/stream with."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(
            (
                f"GET /jobs/stream?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            ).encode()
        )
        return conn.recv(4096).decode(errors="replace").split("\r\n", 1)[0]


def test_make_run_serves_runs_a_job_and_stops_cleanly_on_sigterm(make_run):
    run = make_run
    wait_until(
        lambda: run.proc.poll() is not None or run.answers("/healthz"),
        timeout=600,
        interval=0.5,
        message="make run to answer /healthz",
    )
    assert run.proc.poll() is None, f"make run exited early:\n{run.output()}"
    token = run.token()
    assert token, f"no 'API token:' line in the output:\n{run.output()}"

    status, job = run.request("POST", "/jobs/", {"type": "noop", "priority": "high"})
    assert status == 201, job

    def completed() -> Any:
        status, body = run.request("GET", f"/jobs/{job['id']}")
        assert status == 200, body
        return body if body["status"] == "completed" else None

    done = wait_until(
        completed,
        timeout=120,
        interval=0.25,
        message=f"job {job['id']} to complete\n{run.output()}",
    )
    assert done["result"] == {"ok": True, "slept": 0.0}
    assert done["worker"], "the job ran on a named worker"

    # The admin's, the browsable API's and the API docs' static files, from daphne itself.
    for asset in (
        "/static/admin/css/base.css",
        "/static/rest_framework/css/bootstrap.min.css",
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
    ):
        assert run.answers(asset), f"{asset} is not served under make run"

    assert wait_until(
        lambda: run.answers("/healthcheck", base=run.flower),
        timeout=120,
        message=f"Flower to answer\n{run.output()}",
    )
    # Flower's API takes the development credentials printed at start, and nothing else.
    printed = re.search(r"Flower .*\(user (\S+), password (\S+)\)", "".join(run.lines))
    assert printed, f"no Flower credentials in the output:\n{run.output()}"
    assert _flower_status(run.flower, "/api/workers", printed.groups()) == 200
    assert _flower_status(run.flower, "/api/workers", ("admin", "wrong")) == 401
    assert (
        _websocket_handshake(int(run.base.rsplit(":", 1)[1]), token)
        == "HTTP/1.1 101 Switching Protocols"
    )

    started = descendants(run.proc.pid)
    names = " ".join(cmdline(pid) for pid, _ in started)
    for program in ("honcho", "daphne", "celery", "flower", "scheduler"):
        assert program in names, f"{program} is not running under make run"

    # One process dies: its supervisor starts it again and says so; the platform stays up.
    os.kill(_celery_worker_main(started), signal.SIGKILL)
    wait_until(
        lambda: "worker exited with code -9; restarting it in 1s" in run.output(),
        timeout=60,
        message=f"the worker's supervisor to restart it\n{run.output()}",
    )
    status, again = run.request("POST", "/jobs/", {"type": "noop"})
    assert status == 201, again
    job = again
    wait_until(
        completed, timeout=180, interval=0.25, message=f"a job after the restart\n{run.output()}"
    )
    started = descendants(run.proc.pid)

    os.killpg(run.proc.pid, signal.SIGTERM)
    run.proc.wait(timeout=120)
    wait_until(
        lambda: not still_alive(started),
        timeout=60,
        message=f"every process of make run to exit\n{run.output()}",
    )
    # The output is read by a thread: its last lines may not be in run.lines yet.
    wait_until(lambda: "stopped" in run.output(), timeout=60, message=f"'stopped'\n{run.output()}")


def _count_jobs(status: str) -> int:
    with contextlib.closing(psycopg2.connect(_database_url())) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM jobs_job WHERE status = %s", [status])
        return int(cursor.fetchone()[0])


def test_make_runs_defaults_run_every_job_the_capacity_admits_at_once(make_run):
    """The default capacity (MAX_CPU_UNITS) admits that many one-unit jobs, and the default
    worker has a slot for each: they all run at once (sampled from the database)."""
    run = make_run
    wait_until(
        lambda: run.proc.poll() is not None or run.answers("/healthz"),
        timeout=600,
        interval=0.5,
        message="make run to answer /healthz",
    )
    assert run.proc.poll() is None, f"make run exited early:\n{run.output()}"
    capacity = settings.MAX_CPU_UNITS  # make run's too: it inherits this environment
    # Long enough that the first to start is still running when the last starts, however
    # slowly a loaded machine starts them.
    job = {"type": "noop", "payload": {"seconds": 30}}
    job["resource_requirements"] = {"cpu_units": 1, "memory_mb": 128}
    status, body = run.request("POST", "/jobs/batch/", {"jobs": [job] * capacity})
    assert status == 201, body
    peak = 0

    def all_running_or_done() -> bool:
        nonlocal peak
        peak = max(peak, _count_jobs("running"))
        return peak == capacity or _count_jobs("completed") == capacity

    wait_until(all_running_or_done, timeout=300, message=f"jobs to run\n{run.output()}")
    assert peak == capacity, f"at most {peak} of {capacity} admitted jobs ran at once"
    wait_until(lambda: _count_jobs("completed") == capacity, timeout=300, message="jobs to end")

    # REST and the WebSocket on one port, from one daphne per core.
    cmdlines = [cmdline(pid).split("\0") for pid, _ in still_alive(descendants(run.proc.pid))]
    daphnes = [
        c
        for c in cmdlines
        if any(a.endswith("bin/daphne") for a in c)
        and "--fd" in c
        and "draconic.supervise" not in c
    ]
    assert len(daphnes) == (os.cpu_count() or 1), cmdlines
    os.killpg(run.proc.pid, signal.SIGTERM)
    run.proc.wait(timeout=120)
