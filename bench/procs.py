"""The processes the bench starts: each in its own session (process group), logged to a
file, and always ended (SIGTERM to the group, then SIGKILL) by ``Processes.stop_all``."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


class Processes:
    """Named child process groups. ``stop`` ends one, ``stop_all`` every one still running."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{name}.log", "ab") as log:
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

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def check(self, name: str) -> None:
        """Raise if ``name`` exited (with the end of its log)."""
        proc = self.procs[name]
        if proc.poll() is not None:
            tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    def stop(self, name: str, timeout: float = 20.0) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        _signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
        _signal_group(proc.pid, signal.SIGKILL)  # stragglers of the group (pool children)
        proc.wait(timeout=timeout)

    def stop_all(self) -> None:
        for name in list(self.procs):
            try:
                self.stop(name)
            except Exception as exc:  # keep stopping the others
                print(f"  could not stop {name}: {exc}", file=sys.stderr)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


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


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name, which is in parentheses and may hold spaces.
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return found


def rss_mb(pid: int) -> float:
    """Resident set size of one process in MiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def tree_rss_mb(pid: int) -> float:
    """RSS of ``pid`` plus its direct children, in MiB."""
    return rss_mb(pid) + sum(rss_mb(c) for c in children(pid))


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (all its threads) and of its reaped children."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # utime, stime, cutime, cstime are fields 14-17 of stat; fields[0] here is field 3.
    return sum(int(v) for v in fields[11:15]) / _TICK


def server_cpu_seconds() -> dict[str, float]:
    """CPU time of the PostgreSQL and Redis servers on this machine (every process of theirs,
    with the backends PostgreSQL's postmaster has reaped), by server."""
    totals = {"postgres": 0.0, "redis": 0.0}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith("postgres"):
            totals["postgres"] += cpu_seconds(int(entry.name))
        elif comm.startswith("redis-server"):
            totals["redis"] += cpu_seconds(int(entry.name))
    return totals


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and its live direct children (gunicorn or Celery pool processes)."""
    return cpu_seconds(pid) + sum(cpu_seconds(c) for c in children(pid))
