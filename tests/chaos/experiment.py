"""The running experiment: it submits the load, injects the faults (SIGKILLed workers and
schedulers, a killed and restarted Redis, a flushed Redis, a restarted PostgreSQL) and
restarts what exits by itself, until every job has ended."""

from __future__ import annotations

import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.chaos.plan import TERMINAL, Plan
from tests.chaos.services import Postgres, RedisServer
from tests.harness import Supervisor


def say(message: str) -> None:
    print(f"chaos: {message}", flush=True)


def revive(fleet: Supervisor) -> None:
    """Restart any process that exited by itself: that is a finding, recorded as a crash."""
    for name, code in fleet.revive():
        say(f"{name} exited by itself with code {code}; restarting it")
        tail = fleet.log_tail(name, chars=200_000).splitlines()[-15:]
        print("\n".join(f"    {line[:400]}" for line in tail), flush=True)


@dataclass
class Chaos:
    """The running experiment: services, processes, what was submitted, what was injected."""

    root: Path
    pg: Postgres
    redis: RedisServer
    fleet: Supervisor
    plan: Plan
    ids: dict[str, str] = field(default_factory=dict)  # plan key -> job id
    submitted_batches: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    victims_running: int = 0  # jobs the killed workers were running when killed
    started: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def inject(self, fault: str) -> None:
        from django.db import connection

        from jobs.redis_client import get_redis

        detail = ""
        if fault == "worker_kill":
            victim = self.busiest_worker()
            self.fleet.restart(victim, signal.SIGKILL)
            detail = f" ({victim})"
        elif fault == "scheduler_kill":  # it may hold the dispatch lock: the lock must go with it
            victim = f"s{1 + self.faults[fault] % 2}"
            self.fleet.restart(victim, signal.SIGKILL)
            detail = f" ({victim})"
        elif fault == "redis_restart":
            self.redis.kill()
            time.sleep(1)
            self.redis.start()
        elif fault == "redis_flush":
            self.redis.client().flushall()
        elif fault == "postgres_restart":
            self.pg.restart()
            connection.close()
        get_redis().connection_pool.disconnect()
        self.faults[fault] += 1
        say(f"t={self.elapsed():.0f}s fault #{sum(self.faults.values())}: {fault}{detail}")

    def busiest_worker(self) -> str:
        """The worker running the most jobs right now (so the kill interrupts handlers)."""
        from jobs.models import Job

        workers = sorted(n for n in self.fleet.procs if n.startswith("w"))
        running = Counter(
            w.partition("@")[0]
            for w in Job.objects.filter(status="running").values_list("worker", flat=True)
        )
        victim = max(workers, key=lambda n: (running[n], -workers.index(n)))
        self.victims_running += running[victim]
        return victim

    def submit_next(self, owner: Any) -> None:
        from jobs.api.submit import job_submit_batch
        from tests.factories import make_spec

        batch = self.plan.batches[self.submitted_batches]
        specs = [
            make_spec(
                key=p.key,
                type=f"chaos_{p.kind}",
                priority=p.priority,
                payload={"ms": p.ms},
                cpu_units=p.cpu,
                memory_mb=p.mem,
                max_attempts=8,
                depends_on=p.parents,
            )
            for p in batch
        ]
        jobs = job_submit_batch(owner=owner, specs=specs)
        for planned, job in zip(batch, jobs, strict=True):
            self.ids[planned.key] = str(job.id)
        self.submitted_batches += 1


def status_counts() -> Counter[str]:
    from django.db.models import Count

    from jobs.models import Job

    rows = Job.objects.order_by().values_list("status").annotate(n=Count("id"))
    return Counter(dict(rows))


def drive(chaos: Chaos, owner: Any, faults: list[tuple[float, str]], timeout: float) -> bool:
    """Submit the load and inject the faults until every job is terminal. False on a hang."""
    from django.db import DatabaseError, connection

    total = chaos.plan.total
    backlog_limit = max(150, total // 5)
    pending_faults = list(faults)
    last_fault = last_print = 0.0
    deadline = time.monotonic() + timeout
    while True:
        revive(chaos.fleet)
        try:
            counts = status_counts()
            done = sum(counts[s] for s in TERMINAL)
            submitted = len(chaos.ids)
            while (
                chaos.submitted_batches < len(chaos.plan.batches)
                and submitted - done < backlog_limit
            ):
                chaos.submit_next(owner)
                submitted = len(chaos.ids)
        except DatabaseError as exc:
            say(f"t={chaos.elapsed():.0f}s database unavailable to the load driver: {exc}".strip())
            connection.close()
            if time.monotonic() > deadline:
                return False
            time.sleep(1)
            continue
        now = time.monotonic()
        if (
            pending_faults
            and now - last_fault >= 2
            and (done >= pending_faults[0][0] * total or submitted == done == total)
        ):
            chaos.inject(pending_faults.pop(0)[1])
            last_fault = now
        if now - last_print >= 3:
            busy = " ".join(
                f"{s}={counts[s]}" for s in ("pending", "queued", "running", "retrying")
            )
            say(
                f"t={chaos.elapsed():.0f}s terminal={done}/{total} {busy} faults={sum(chaos.faults.values())}"
            )
            last_print = now
        if done == total and not pending_faults:
            return True
        if now > deadline:
            return False
        time.sleep(0.5)
