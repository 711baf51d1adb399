"""How the ``draconic`` command shows things: rich tables for people, JSON for scripts."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from draconic_sdk.models import (
    BatchResult,
    DeadLetter,
    Event,
    Health,
    Job,
    Limit,
    LogEntry,
    Schedule,
)

out = Console(soft_wrap=True)
#: Live displays and errors go to stderr, so stdout holds only the answer (``--json | jq``).
err = Console(stderr=True)

STATUS_STYLE = {
    "pending": "yellow",
    "queued": "cyan",
    "running": "blue",
    "retrying": "magenta",
    "completed": "green",
    "failed": "red",
    "cancelled": "dim",
}


def plain(value: Any) -> Any:
    """A JSON-ready copy of a model (dataclasses become dicts, datetimes ISO 8601)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def print_json(value: Any) -> None:
    out.print_json(json.dumps(plain(value)), indent=2, highlight=False)


def styled(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _table(*columns: str, ids: tuple[str, ...] = ("id", "job")) -> Table:
    """A plain table whose id columns are never cut (a script may copy them)."""
    table = Table(box=None)
    for name in columns:
        if name in ids:
            table.add_column(name, no_wrap=True, min_width=36)
        else:
            table.add_column(name, overflow="fold")
    return table


def jobs_table(jobs: Iterable[Job]) -> Table:
    table = _table("id", "type", "priority", "status", "attempt", "created")
    for job in jobs:
        table.add_row(
            job.id,
            job.type,
            job.priority,
            styled(job.status),
            str(job.attempt),
            _when(job.created_at),
        )
    return table


def job_detail(job: Job) -> Table:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    rows = {
        "id": job.id,
        "type": job.type,
        "status": styled(job.status),
        "priority": job.priority,
        "attempt": f"{job.attempt} of {job.max_attempts}",
        "payload": json.dumps(job.payload),
        "result": json.dumps(job.result) if job.result is not None else "",
        "error": job.error,
        "depends on": ", ".join(job.depends_on),
        "batch": job.batch_id or "",
        "concurrency key": job.concurrency_key or "",
        "run at": _when(job.run_at),
        "schedule": f"{job.schedule} ({_when(job.scheduled_for)})" if job.schedule else "",
        "waiting on": ", ".join(w.get("reason", "?") for w in job.waiting_on or []),
        "created": _when(job.created_at),
        "completed": _when(job.completed_at),
    }
    for name, value in rows.items():
        if value:
            table.add_row(name, value)
    return table


def logs_table(lines: Iterable[LogEntry]) -> Table:
    table = _table("id", "time", "attempt", "level", "change", "message", ids=())
    for line in lines:
        change = f"{line.from_status or '-'} -> {line.to_status}" if line.to_status else ""
        table.add_row(
            str(line.id),
            _when(line.created_at),
            str(line.attempt),
            line.level,
            change,
            line.message,
        )
    return table


def events_table(events: Iterable[Event]) -> Table:
    table = _table("cursor", "time", "job", "type", "change", "attempt")
    for e in events:
        change = f"{e.previous_status or '-'} -> {styled(e.status)}"
        table.add_row(
            str(e.cursor), _when(e.timestamp), e.job_id, e.job_type, change, str(e.attempt)
        )
    return table


def event_line(e: Event) -> str:
    """One event as a plain line (for a pipe): cursor, time, job, type, change, attempt."""
    change = f"{e.previous_status or '-'} -> {e.status}"
    return f"{e.cursor}\t{_when(e.timestamp)}\t{e.job_id}\t{e.job_type}\t{change}\t{e.attempt}"


def dead_letters_table(letters: Iterable[DeadLetter]) -> Table:
    table = _table("job", "type", "reason", "attempts", "failed at", "error")
    for d in letters:
        table.add_row(
            d.job.id, d.job.type, d.reason, str(d.attempts), _when(d.created_at), d.error[:80]
        )
    return table


def health_table(health: Health) -> Table:
    table = _table("check", "ok", "latency ms", "details")
    for name, check in health.checks.items():
        ok = "[green]ok[/]" if check.get("ok") else "[red]FAIL[/]"
        details = check.get("error") or ", ".join(
            f"{k}={v}" for k, v in check.items() if k not in ("ok", "latency_ms")
        )
        table.add_row(name, ok, str(check.get("latency_ms", "")), str(details)[:100])
    return table


def graph_tree(result: BatchResult, statuses: dict[str, str]) -> Tree:
    """The batch's jobs under their parents (a job with several parents under each)."""
    tree = Tree(f"batch {result.batch_id}")
    key_of = {job.id: key for key, job in result.jobs.items()}
    children: dict[str, list[Job]] = {}
    for job in result.all_jobs:
        for parent in job.depends_on:
            children.setdefault(parent, []).append(job)

    def label(job: Job) -> str:
        status = statuses.get(job.id, job.status)
        return f"{key_of.get(job.id, job.id)} ({job.type}) {styled(status)}"

    def grow(node: Tree, job: Job) -> None:
        for child in children.get(job.id, []):
            grow(node.add(label(child)), child)

    ids = {job.id for job in result.all_jobs}
    for job in result.all_jobs:
        if not any(p in ids for p in job.depends_on):
            grow(tree.add(label(job)), job)
    return tree


def _every(schedule: Schedule) -> str:
    return schedule.cron or f"every {schedule.interval_seconds}s"


def schedules_table(schedules: Iterable[Schedule]) -> Table:
    table = _table("id", "name", "when", "next fire (UTC)")
    for s in schedules:
        when = f"{_every(s)} (paused)" if s.paused else _every(s)
        table.add_row(s.id, s.name, when, _when(s.next_fire_at))
    return table


def schedule_detail(schedule: Schedule) -> Table:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    rows = {
        "id": schedule.id,
        "name": schedule.name,
        "when": f"{_every(schedule)} ({schedule.timezone})",
        "job": json.dumps(schedule.job),
        "overlap": schedule.overlap,
        "catch-up": f"{schedule.catchup} (at most {schedule.catchup_limit})",
        "paused": "yes" if schedule.paused else "",
        "next fires": ", ".join(_when(t) for t in schedule.next_fire_times),
        "last runs": ", ".join(
            f"{_when(r.due_at)} {r.outcome}{' (manual)' if r.manual else ''}"
            for r in schedule.last_runs
        ),
    }
    for name, value in rows.items():
        if value:
            table.add_row(name, value)
    return table


def limits_table(rules: Iterable[Limit]) -> Table:
    table = _table("id", "key", "max concurrency", "rate", "in use", ids=())
    for rule in rules:
        in_use = ", ".join(f"{k}: {v}" for k, v in (rule.in_use or {}).items())
        concurrency = "" if rule.max_concurrency is None else str(rule.max_concurrency)
        table.add_row(str(rule.id), rule.key, concurrency, rule.rate or "", in_use)
    return table
