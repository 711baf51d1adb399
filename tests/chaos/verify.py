"""The verdict of the chaos run: the invariants it checks once every job has ended, what it
prints about them, and the evidence that the faults hit something."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.chaos.experiment import Chaos, say, status_counts
from tests.chaos.plan import FAULT_KINDS, TERMINAL


@dataclass
class Verdict:
    counts: Counter[str]
    lost: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    multi_terminal: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    unrecorded: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    count_mismatch: list[str] = field(default_factory=list)
    ledger: str = ""

    @property
    def passed(self) -> bool:
        problems = (
            self.lost,
            self.unexpected,
            self.multi_terminal,
            self.duplicates,
            self.unrecorded,
            self.order,
            self.count_mismatch,
        )
        return not any(problems) and not self.ledger


def read_run_log(path: Path) -> list[tuple[str, int, int, float]]:
    """``(job_id, attempt, pid, start_ts)`` of every handler execution."""
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            job_id, attempt, pid, started = line.split(":")
            out.append((job_id, int(attempt), int(pid), float(started)))
    return out


def verify(chaos: Chaos, run_log: Path) -> Verdict:
    from django.db.models import Count

    from jobs.models import ExecutionLog, Job, JobDependency

    rows = {
        str(r["id"]): r
        for r in Job.objects.filter(id__in=list(chaos.ids.values())).values(
            "id", "status", "attempt", "started_at", "completed_at"
        )
    }
    verdict = Verdict(counts=Counter(r["status"] for r in rows.values()))
    for key, job_id in chaos.ids.items():
        row = rows.get(job_id)
        if row is None or row["status"] not in TERMINAL:
            verdict.lost.append(job_id)
        elif row["status"] != chaos.plan.expected[key]:
            verdict.unexpected.append(job_id)
    terminal_logs = (
        ExecutionLog.objects.filter(to_status__in=TERMINAL)
        .order_by()
        .values_list("job_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    verdict.multi_terminal = [str(job_id) for job_id, _ in terminal_logs]
    runs = read_run_log(run_log)
    seen = Counter((job_id, attempt) for job_id, attempt, _, _ in runs)
    verdict.duplicates = duplicate_runs(runs)
    verdict.unrecorded = [
        j for j, r in rows.items() if r["status"] == "completed" and (j, r["attempt"]) not in seen
    ]
    verdict.order = order_violations(
        rows,
        runs,
        JobDependency.objects.filter(job_id__in=list(rows)).values_list("job_id", "depends_on_id"),
    )
    db_counts = status_counts()
    if (
        db_counts != verdict.counts
        or sum(db_counts.values()) != len(chaos.ids)
        or len(rows) != len(chaos.ids)
    ):
        verdict.count_mismatch = [
            f"checked {dict(verdict.counts)}, database {dict(db_counts)}, "
            f"submitted {len(chaos.ids)}"
        ]
    verdict.ledger = ledger_problem()
    return verdict


def duplicate_runs(runs: list[tuple[str, int, int, float]]) -> list[str]:
    """``job:attempt`` pairs whose handler ran more than once."""
    seen = Counter((job_id, attempt) for job_id, attempt, _, _ in runs)
    return [f"{j}:{a} ran {n} times" for (j, a), n in seen.items() if n > 1]


def order_violations(
    rows: dict[str, Any], runs: list[tuple[str, int, int, float]], edges: Any
) -> list[str]:
    """Completed children whose start (in the database, or any run of the handler) came before
    a parent completed."""
    starts: dict[str, list[float]] = {}
    for job_id, _, _, started in runs:
        starts.setdefault(job_id, []).append(started)
    out = []
    for child, parent in edges:
        child, parent = str(child), str(parent)
        c, p = rows[child], rows[parent]
        if c["status"] != "completed":
            continue
        if p["status"] != "completed" or p["completed_at"] is None:
            out.append(f"{child} completed but its parent {parent} is {p['status']}")
            continue
        early = [s for s in starts.get(child, []) if s < p["completed_at"].timestamp()]
        if c["started_at"] < p["completed_at"] or early:
            out.append(
                f"{child} started {c['started_at']} before its parent {parent} completed {p['completed_at']}"
            )
    return out


def ledger_problem(wait: float = 60) -> str:
    """Empty when the ledger is present and holds nothing, after giving the schedulers' ticks
    ``wait`` seconds to reconcile it; otherwise what it still holds."""
    from jobs.engine import ledger

    deadline = time.monotonic() + wait
    while True:
        usage = ledger.ledger_usage()
        if ledger.ledger_is_present() and usage.cpu_units == usage.memory_mb == usage.leases == 0:
            return ""
        if time.monotonic() > deadline:
            return (
                f"present={ledger.ledger_is_present()} cpu={usage.cpu_units} "
                f"memory={usage.memory_mb} leases={sorted(ledger.ledger_leases())[:10]}"
            )
        time.sleep(0.5)


def explain(verdict: Verdict) -> None:
    """Print the details of each violation, with the ExecutionLog rows of the first jobs."""
    from jobs.models import ExecutionLog

    for name in (
        "lost",
        "unexpected",
        "multi_terminal",
        "duplicates",
        "unrecorded",
        "order",
        "count_mismatch",
    ):
        items = getattr(verdict, name)
        if items:
            say(f"{name}: {len(items)}; first: {items[:10]}")
    if verdict.ledger:
        say(f"ledger not empty: {verdict.ledger}")
    for job_id in (verdict.lost + verdict.unexpected + verdict.multi_terminal)[:5]:
        say(f"history of {job_id}:")
        for log in ExecutionLog.objects.filter(job_id=job_id).order_by("id"):
            print(
                f"    {log.created_at:%H:%M:%S.%f} #{log.attempt} {log.from_status or '-'}->"
                f"{log.to_status or '-'} {log.message[:160]} {log.context or ''}"
            )


def evidence(chaos: Chaos, run_log: Path) -> str:
    """What the faults did: handler runs, retries by reason, ledger rebuilds, re-publishes (read
    from the processes' logs). A run whose faults hit nothing proves little."""
    from jobs.models import ExecutionLog

    runs = read_run_log(run_log)
    reasons = Counter(
        ExecutionLog.objects.filter(to_status="retrying").values_list("context__reason", flat=True)
    )
    logs = [path.read_text(errors="replace") for path in chaos.root.glob("*.log")]
    rebuilt = sum(text.count("ledger rebuilt from PostgreSQL") for text in logs)
    republished = sum(text.count("re-publishing") for text in logs)
    superseded = sum(text.count("attempt had been superseded") for text in logs)
    retries = " ".join(f"{reason}={n}" for reason, n in sorted(reasons.items()))
    return (
        f"handler_runs={len(runs)} retries({retries}) running_when_killed={chaos.victims_running} "
        f"ledger_rebuilds={rebuilt} republishes={republished} superseded_results={superseded}"
    )


def summary(chaos: Chaos, verdict: Verdict) -> str:
    c = verdict.counts
    kinds = " ".join(f"{k}={chaos.faults[k]}" for k in FAULT_KINDS)
    return (
        f"jobs={len(chaos.ids)} completed={c['completed']} failed={c['failed']} cancelled={c['cancelled']} "
        f"faults={sum(chaos.faults.values())} ({kinds}) lost={len(verdict.lost)} "
        f"duplicates={len(verdict.duplicates)} order_violations={len(verdict.order)} "
        f"unexpected={len(verdict.unexpected)} multi_terminal={len(verdict.multi_terminal)} "
        f"ledger_used={0 if not verdict.ledger else 1} crashes={len(chaos.fleet.crashes)} "
        f"elapsed={chaos.elapsed():.0f}s -> {'PASS' if verdict.passed else 'FAIL'}"
    )
