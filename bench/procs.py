"""What the bench measures of its processes (CPU time and memory, read from /proc). The
processes themselves are started and ended by the platform harness, ``tests.harness``."""

from __future__ import annotations

import os
from pathlib import Path


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
