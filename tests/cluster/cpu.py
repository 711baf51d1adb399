"""CPU time of each process kind of the cluster, read from ``/proc`` for every process inside
the hosts' namespaces (user + system, including reaped children): what ``docs/scaling.md``
turns into cores per 1,000 jobs/s. A process killed by a fault takes its CPU time with it, so
the figures are a lower bound for the kinds the faults kill (api, PgBouncer)."""

from __future__ import annotations

import os
from collections import Counter

from tests.cluster import netns, topology

TICK = os.sysconf("SC_CLK_TCK")
ROLES = {"api": "api", "w": "worker", "s": "scheduler"}
DB_KINDS = {"postgres": "postgres", "redis-server": "redis", "pgbouncer": "pgbouncer"}


def _kind(host: str, comm: str) -> str | None:
    if host == topology.DB.name:
        return DB_KINDS.get(comm)
    if host == topology.LB.name:
        return "haproxy"
    return ROLES[host.rstrip("0123456789")]


def _seconds(pid: int) -> tuple[str, float]:
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    comm = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return comm, (utime + stime + cutime + cstime) / TICK


def sample() -> Counter[str]:
    """CPU seconds so far of each kind: api, worker, scheduler, haproxy, postgres, redis,
    pgbouncer. A child counted in its parent's cutime once reaped is counted once: processes
    alive now count their own time, the dead ones only through their parents."""
    totals: Counter[str] = Counter()
    for host in topology.HOSTS:
        pids = netns.ip("netns", "pids", host.netns, check=False).split()
        for pid in pids:
            try:
                comm, seconds = _seconds(int(pid))
            except (OSError, ValueError):
                continue  # it exited meanwhile
            kind = _kind(host.name, comm)
            if kind is not None:
                totals[kind] += seconds
    return totals


def per_job(before: Counter[str], after: Counter[str], jobs: int) -> dict[str, float]:
    """Milliseconds of CPU per job of each kind between two samples."""
    kinds = sorted(set(before) | set(after))
    return {k: max(0.0, after[k] - before[k]) * 1000 / max(jobs, 1) for k in kinds}
