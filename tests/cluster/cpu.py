"""CPU time of each process kind of the cluster, read from ``/proc`` for every process inside
the hosts' namespaces (user + system): what ``docs/scaling.md``
turns into cores per 1,000 jobs/s. A process that ends takes with it what it spent since it was
last sampled, and short-lived children (PostgreSQL backends of closed connections) are not
seen at all, so the figures are lower bounds."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

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
    return comm, (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def sample() -> dict[tuple[str, int], float]:
    """CPU seconds so far of each live process of the hosts, by (kind, pid); the kinds are
    api, worker, scheduler, haproxy, postgres, redis and pgbouncer."""
    out: dict[tuple[str, int], float] = {}
    for host in topology.HOSTS:
        for pid in netns.ip("netns", "pids", host.netns, check=False).split():
            try:
                comm, seconds = _seconds(int(pid))
            except (OSError, ValueError):
                continue  # it exited meanwhile
            kind = _kind(host.name, comm)
            if kind is not None:
                out[(kind, int(pid))] = seconds
    return out


@dataclass
class Meter:
    """CPU time of each kind from ``start`` on: every process's last sampled time less its
    time at the start (0 for one started since). ``tick`` samples again, so that a process a
    fault kills keeps the time it had at its last tick."""

    first: dict[tuple[str, int], float] = field(default_factory=sample)
    last: dict[tuple[str, int], float] = field(default_factory=dict)

    def tick(self) -> None:
        self.last.update(sample())

    def per_job(self, jobs: int) -> dict[str, float]:
        """Milliseconds of CPU per job of each kind."""
        self.tick()
        totals: dict[str, float] = {}
        for key, seconds in self.last.items():
            spent = max(0.0, seconds - self.first.get(key, 0.0))
            totals[key[0]] = totals.get(key[0], 0.0) + spent
        return {k: totals[k] * 1000 / max(jobs, 1) for k in sorted(totals)}
