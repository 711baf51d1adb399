"""The load of the chaos run and what it must end in: batches of dependency shapes (chains,
diamonds, fan-ins; mixed priorities; ~10% fail their first attempt, a few fail for good), the
expected outcome of every job, and the schedule of faults."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

TERMINAL = ("completed", "failed", "cancelled")


@dataclass
class Planned:
    key: str
    kind: str  # ok | flaky | doomed
    parents: list[str]
    priority: str
    ms: int
    cpu: int
    mem: int
    starts_shape: bool = False


@dataclass
class Plan:
    batches: list[list[Planned]]
    expected: dict[str, str] = field(default_factory=dict)  # key -> completed|failed|cancelled

    @property
    def total(self) -> int:
        return sum(len(b) for b in self.batches)


SHAPES: dict[str, list[list[int]]] = {  # parents of each member, by index inside the shape
    "single": [[]],
    "chain2": [[], [0]],
    "chain4": [[], [0], [1], [2]],
    "diamond": [[], [0], [0], [1, 2]],
    "fan_in": [[], [], [], [0, 1, 2]],
}


def make_plan(total: int, batch_size: int, rng: random.Random) -> Plan:
    """About ``total`` jobs in batches of dependency shapes, with their expected outcomes."""
    jobs: list[Planned] = []
    while len(jobs) < total:
        shape = rng.choice(list(SHAPES))
        members = SHAPES[shape][: total - len(jobs)]
        base = len(jobs)
        for index, parents in enumerate(members):
            roll = rng.random()
            kind = "doomed" if roll < 0.02 else "flaky" if roll < 0.12 else "ok"
            jobs.append(
                Planned(
                    key=f"j{base + index}",
                    kind=kind,
                    parents=[f"j{base + p}" for p in parents],
                    priority=rng.choice(("critical", "high", "normal", "low")),
                    ms=rng.randint(0, 200),
                    cpu=rng.randint(1, 2),
                    mem=rng.choice((64, 128, 256, 512)),
                    starts_shape=index == 0,
                )
            )
    # A few doomed jobs with descendants, so that cancellation is exercised every run.
    heads = [j for j in jobs if not j.parents and any(j.key in k.parents for k in jobs)]
    for head in heads[3 : 3 + max(3, total // 400)]:
        head.kind = "doomed"
    plan = Plan(batches=[])
    start = 0
    while start < len(jobs):  # cut between shapes, never inside one
        end = min(start + batch_size, len(jobs))
        while end < len(jobs) and not jobs[end].starts_shape:
            end += 1
        plan.batches.append(jobs[start:end])
        start = end
    plan.expected = expected_outcomes(jobs)
    return plan


def expected_outcomes(jobs: list[Planned]) -> dict[str, str]:
    """Descendants of a doomed job end cancelled; a doomed job itself fails (unless one of its
    own ancestors failed first); every other job completes."""
    outcome: dict[str, str] = {}
    for job in jobs:  # parents always come first
        if any(outcome[p] != "completed" for p in job.parents):
            outcome[job.key] = "cancelled"
        else:
            outcome[job.key] = "failed" if job.kind == "doomed" else "completed"
    return outcome


FULL_FAULTS = [
    (0.05, "worker_kill"),
    (0.14, "redis_flush"),
    (0.24, "worker_kill"),
    (0.34, "postgres_restart"),
    (0.46, "worker_kill"),
    (0.58, "redis_restart"),
    (0.70, "worker_kill"),
    (0.80, "scheduler_kill"),
]
QUICK_FAULTS = [
    (0.08, "worker_kill"),
    (0.20, "redis_flush"),
    (0.32, "worker_kill"),
    (0.44, "postgres_restart"),
    (0.56, "redis_restart"),
    (0.68, "scheduler_kill"),
    (0.80, "worker_kill"),
]
FAULT_KINDS = ("worker_kill", "redis_restart", "redis_flush", "postgres_restart", "scheduler_kill")
