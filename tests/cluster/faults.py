"""The faults of ``make cluster``. Each runs in a thread of its own (a cut lasts longer than a
lease, the load goes on meanwhile) and records what it did and hit:

- ``worker_cut``: the busiest worker host's link down for three leases, mid-job, then up
  again; its jobs must run again elsewhere, its late results be refused.
- ``api_kill``: both servers of one api host SIGKILLed during submissions, back after 3 s.
- ``scheduler_cut``: a scheduler host's link down for 10 s.
- ``pgbouncer_restart``: PgBouncer killed and started again.
- ``worker_netem``: 50 ms of latency and 2% packet loss on a worker host for a while.
- ``scheduler_freeze``: one scheduler SIGSTOPped for 20 s: how many jobs were admitted
  meanwhile is reported (``admitted_while_frozen``).
"""

from __future__ import annotations

import signal
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.cluster import netns, topology
from tests.cluster.holder import lock_holder
from tests.harness import Supervisor

FREEZE_SECONDS = 20.0


def say(message: str) -> None:
    print(f"cluster: {message}", flush=True)


@dataclass
class Faults:
    fleet: Supervisor
    lease: float
    netem_seconds: float
    started: float = field(default_factory=time.monotonic)
    done: Counter[str] = field(default_factory=Counter)
    cut_jobs: dict[str, int] = field(default_factory=dict)  # job id -> attempt at the cut
    freezes: list[str] = field(default_factory=list)
    stalls: list[str] = field(default_factory=list)  # freezes during which nothing was admitted
    errors: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    qdisc: str = ""
    submitting: Callable[[], bool] = lambda: True

    def busy(self) -> bool:
        return any(t.is_alive() for t in self.threads)

    def start(self, kind: str) -> None:
        number = sum(self.done.values()) + len([t for t in self.threads if t.is_alive()]) + 1
        say(f"t={time.monotonic() - self.started:.0f}s fault #{number}: {kind}")
        thread = threading.Thread(target=self._run, args=(kind,), name=kind, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _run(self, kind: str) -> None:
        try:
            getattr(self, kind)()
            self.done[kind] += 1
        except Exception:
            self.errors.append(f"{kind}: {traceback.format_exc()}")

    def join(self, timeout: float = 120) -> None:
        for thread in self.threads:
            thread.join(timeout)

    def worker_cut(self) -> None:
        for _ in range(5):  # a host whose jobs all ended just before the cut: cut another
            host = self._busiest_worker()
            netns.cut(host)
            time.sleep(1)  # a commit in flight at the cut has landed, or never will
            # Read after the cut: a job that ended between a read before it and the cut would
            # count as cut off, and its one attempt as "not run again".
            cut = self._running_on(host.name)
            if cut:
                break
            netns.heal(host)
            say(f"  {host.name} had no job left running at the cut; trying again")
        self.cut_jobs.update(cut)
        say(f"  {host.name} cut off with {len(cut)} jobs running, for {3 * self.lease:.0f}s")
        time.sleep(3 * self.lease - 1)
        netns.heal(host)
        say(f"  {host.name} back on the network")

    def _busiest_worker(self) -> netns.Host:
        """The worker host running the most jobs (waiting up to 10 s for one to run any)."""
        workers = [h.name for h in topology.WORKERS]
        running: Counter[str] = Counter()
        for _ in range(50):
            running = Counter({name: len(self._running_on(name)) for name in workers})
            if sum(running.values()):
                break
            time.sleep(0.2)
        victim = max(workers, key=lambda n: (running[n], -workers.index(n)))
        return next(h for h in topology.WORKERS if h.name == victim)

    @staticmethod
    def _running_on(name: str) -> dict[str, int]:
        """Job id -> attempt of the jobs PostgreSQL shows running on worker host ``name``."""
        from jobs.models import Job

        rows = Job.objects.filter(status="running").values_list("id", "worker", "attempt")
        return {str(j): a for j, w, a in rows if str(w).partition("@")[0] == name}

    def api_kill(self) -> None:
        victim = topology.APIS[self.done["api_kill"] % len(topology.APIS)].name
        for _ in range(100):  # during submissions: wait (up to 10 s) for one in flight
            if self.submitting():
                break
            time.sleep(0.1)
        for server in ("rest", "ws"):
            self.fleet.kill(f"{victim}-{server}", signal.SIGKILL)
        time.sleep(3)
        for server in ("rest", "ws"):
            self.fleet.restart(f"{victim}-{server}")
        say(f"  {victim}'s gunicorn and daphne started again")

    def scheduler_cut(self) -> None:
        host = topology.SCHEDULERS[self.done["scheduler_cut"] % len(topology.SCHEDULERS)]
        netns.cut(host)
        time.sleep(10)
        netns.heal(host)
        say(f"  {host.name} back on the network")

    def pgbouncer_restart(self) -> None:
        self.fleet.kill("pgbouncer", signal.SIGKILL)
        time.sleep(1)
        self.fleet.restart("pgbouncer")

    def worker_netem(self) -> None:
        host = topology.WORKERS[-1]
        self.qdisc = netns.degrade(host)
        say(f"  {host.name}: {self.qdisc} for {self.netem_seconds:.0f}s")
        time.sleep(self.netem_seconds)
        netns.restore(host)
        say(f"  {host.name}: latency and loss removed")

    def scheduler_freeze(self) -> None:
        from jobs.models import ExecutionLog, Job

        ready = Job.objects.filter(status__in=("pending", "retrying")).count()
        start = time.time()
        victim, held = self._freeze_holder()
        try:
            time.sleep(FREEZE_SECONDS)
        finally:
            _signal(self.fleet.pid(victim), signal.SIGCONT)
        admitted = ExecutionLog.objects.filter(
            to_status="queued",
            created_at__gte=_aware(start + 2),
            created_at__lt=_aware(start + FREEZE_SECONDS),
        ).count()
        what = "holding the dispatch lease" if held else "(not caught holding the lease)"
        self.freezes.append(
            f"{victim} {what} frozen {FREEZE_SECONDS:.0f}s: {admitted} jobs admitted meanwhile, "
            f"{ready} waiting at the start"
        )
        say(f"  {self.freezes[-1]}")
        if admitted == 0:
            self.stalls.append(self.freezes[-1])

    def _freeze_holder(self) -> tuple[str, bool]:
        """SIGSTOP the scheduler that holds the dispatcher's lock, checked once it is stopped
        (the lock is taken per admission pass); s1 when, for 10 s, none is found holding it."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            holder = lock_holder(self.fleet)
            if holder:
                _signal(self.fleet.pid(holder), signal.SIGSTOP)
                if lock_holder(self.fleet) == holder:
                    return holder, True
                _signal(self.fleet.pid(holder), signal.SIGCONT)
            time.sleep(0.02)
        victim = topology.SCHEDULERS[0].name
        _signal(self.fleet.pid(victim), signal.SIGSTOP)
        return victim, False


def _signal(pid: int, sig: int) -> None:
    import os

    os.killpg(pid, sig)


def _aware(timestamp: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, tz=UTC)
