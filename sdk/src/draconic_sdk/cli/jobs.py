"""The job commands: submit, get, ls, logs, cancel, graph submit, watch."""

from __future__ import annotations

import json
import time
from collections import deque
from pathlib import Path
from typing import Any

import click
from rich.live import Live

from draconic_sdk.cli import errors, render
from draconic_sdk.cli.app import State, cli, pass_state
from draconic_sdk.graph import Graph
from draconic_sdk.models import PRIORITIES, TERMINAL_STATUSES, Event, Job

STATUSES = ("pending", "queued", "running", "retrying", "completed", "failed", "cancelled")


def read_json(value: str, what: str) -> Any:
    """``value`` as JSON, or the JSON of the file ``@path`` names."""
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text()
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {value[1:]}: {exc.strerror}", param_hint=what
            ) from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON ({exc})", param_hint=what) from exc


def _finish(state: State, jobs: list[Job]) -> None:
    """Exit 0 if every job completed, else 1 (a failed or cancelled one)."""
    if any(job.status != "completed" for job in jobs):
        raise click.exceptions.Exit(errors.JOB_FAILED)


def _wait_one(state: State, job: Job, timeout: float | None) -> Job:
    """Wait for ``job`` with a live status line on stderr."""
    with render.err.status(f"job {job.id} {render.styled(job.status)}") as line:

        def update(job_id: str, status: str) -> None:
            line.update(f"job {job_id} {render.styled(status)}")

        final = state.client.wait(job, timeout=timeout, on_status=update)
    return final


@cli.command()
@click.argument("type")
@click.option("--payload", default="{}", help="The payload: JSON, or @file.json.")
@click.option("--priority", type=click.Choice(PRIORITIES), help="Default: the type's.")
@click.option("--cpu", "cpu_units", type=int, help="CPU units it needs.")
@click.option("--memory", "memory_mb", type=int, help="Memory it needs, in MB.")
@click.option("--depends-on", multiple=True, help="A parent job's id (repeatable).")
@click.option("--max-attempts", type=int)
@click.option("--timeout-seconds", type=int, help="How long one attempt may run.")
@click.option("--idempotency-key", help="Makes the submit safe to repeat (default: generated).")
@click.option("--run-at", help="Not started before this time (RFC 3339, with its offset).")
@click.option(
    "--delay", "delay_seconds", type=float, help="Not started before this many seconds from now."
)
@click.option("--concurrency-key", help="The key limit rules count it under (tenant:42).")
@click.option(
    "--wait", is_flag=True, help="Follow the job until it ends; exit 1 unless it completed."
)
@click.option("--wait-timeout", type=float, help="With --wait: give up after this many seconds.")
@pass_state
def submit(
    state: State, /, type: str, payload: str, wait: bool, wait_timeout: float | None, **options: Any
) -> None:
    """Submit a job of TYPE."""
    body = read_json(payload, "--payload")
    if not isinstance(body, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--payload")
    job = state.client.submit(type, body, **options)
    if wait:
        job = _wait_one(state, job, wait_timeout)
    state.show(job, render.job_detail(job))
    if wait:
        _finish(state, [job])


@cli.command()
@click.argument("job_id")
@pass_state
def get(state: State, job_id: str) -> None:
    """Show one job."""
    job = state.client.get(job_id)
    state.show(job, render.job_detail(job))


@cli.command(name="ls")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--type", "type_", metavar="TYPE")
@click.option("--priority", type=click.Choice(PRIORITIES))
@click.option(
    "--scheduled/--not-scheduled",
    default=None,
    help="Only the jobs waiting for their time (a run_at, a retry's backoff), or only the others.",
)
@click.option("--limit", default=20, show_default=True, help="At most this many (0: all).")
@pass_state
def list_jobs(
    state: State,
    status: str | None,
    type_: str | None,
    priority: str | None,
    scheduled: bool | None,
    limit: int,
) -> None:
    """List your jobs, newest first."""
    jobs = list(
        state.client.list(
            status=status,
            type=type_,
            priority=priority,
            scheduled=scheduled,
            limit=limit or None,
            page_size=min(limit or 100, 100),
        )
    )
    state.show(jobs, render.jobs_table(jobs))


@cli.command()
@click.argument("job_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the job ends.")
@pass_state
def logs(state: State, job_id: str, follow: bool) -> None:
    """Show a job's execution log."""
    lines = state.client.logs(job_id)
    _print_lines(state, lines)
    if not follow:
        return
    last = lines[-1].id if lines else None
    while True:
        done = state.client.get(job_id).done  # read before the lines: none is missed at the end
        lines = state.client.logs(job_id, since=last)
        _print_lines(state, lines)
        last = lines[-1].id if lines else last
        if done:
            return
        time.sleep(1.0)


def _print_lines(state: State, lines: list[Any]) -> None:
    if state.json:
        for line in lines:
            click.echo(json.dumps(render.plain(line)))
    elif lines:
        render.out.print(render.logs_table(lines))


@cli.command()
@click.argument("job_id")
@pass_state
def cancel(state: State, job_id: str) -> None:
    """Cancel a job (a running one is asked to stop)."""
    job = state.client.cancel(job_id)
    state.show(job, render.job_detail(job))


@cli.group()
def graph() -> None:
    """Dependency graphs (batches)."""


@graph.command(name="submit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--wait",
    is_flag=True,
    help="Show a live tree until every job ends; exit 1 unless all completed.",
)
@click.option("--wait-timeout", type=float, help="With --wait: give up after this many seconds.")
@pass_state
def graph_submit(state: State, file: str, wait: bool, wait_timeout: float | None) -> None:
    """Submit the graph in FILE: the batch format, {"jobs": [{"key", "type", ...}]}."""
    try:
        spec = Graph.from_json(read_json(f"@{file}", "FILE"))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="FILE") from exc
    result = state.client.submit_graph(spec)
    jobs = result.all_jobs
    if wait:
        statuses = {job.id: job.status for job in jobs}
        with Live(render.graph_tree(result, statuses), console=render.err) as live:

            def update(job_id: str, status: str) -> None:
                statuses[job_id] = status
                live.update(render.graph_tree(result, statuses))

            jobs = state.client.wait(jobs, timeout=wait_timeout, on_status=update)
    final = {job.id: job.status for job in jobs}
    body = {
        "batch_id": result.batch_id,
        "keys": {k: j.id for k, j in result.jobs.items()},
        "jobs": jobs,
    }
    state.show(body, render.graph_tree(result, final))
    if wait:
        _finish(state, jobs)


@cli.command()
@click.option("--job", "job_id", help="Only this job.")
@click.option("--batch", "batch_id", help="Only this batch's jobs.")
@click.option("--since", type=int, help="Replay the changes after this cursor first (0: all).")
@click.option("--until-done", is_flag=True, help="With --job: stop once the job has ended.")
@pass_state
def watch(
    state: State, job_id: str | None, batch_id: str | None, since: int | None, until_done: bool
) -> None:
    """A live table of job events (JSON lines with --json). Ctrl-C stops."""
    events: deque[Event] = deque(maxlen=30)
    stream = state.client.stream(job=job_id, batch=batch_id, since=since)
    try:
        if state.json:
            for event in stream:
                click.echo(json.dumps(render.plain(event)), nl=True)
                if until_done and event.job_id == job_id and event.status in TERMINAL_STATUSES:
                    return
            return
        if not render.out.is_terminal:  # piped: one line per event, nothing redrawn
            for event in stream:
                click.echo(render.event_line(event))
                if until_done and event.job_id == job_id and event.status in TERMINAL_STATUSES:
                    return
            return
        with Live(render.events_table(events), console=render.out) as live:
            for event in stream:
                events.append(event)
                live.update(render.events_table(events))
                if until_done and event.job_id == job_id and event.status in TERMINAL_STATUSES:
                    return
    except KeyboardInterrupt:
        return
