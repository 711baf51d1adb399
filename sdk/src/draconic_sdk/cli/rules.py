"""The commands of schedules (``draconic schedules ...``) and limit rules (``draconic limits
...``, staff)."""

from __future__ import annotations

import re
from typing import Any

import click

from draconic_sdk.cli import render
from draconic_sdk.cli.app import State, cli, pass_state
from draconic_sdk.cli.jobs import read_json
from draconic_sdk.errors import NotFound
from draconic_sdk.rule_calls import UNSET

INTERVAL = re.compile(r"^(?P<n>\d+)(?P<unit>[smhd]?)$")
SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(value: str) -> int:
    """``90``, ``90s``, ``5m``, ``1h`` or ``1d`` in seconds."""
    match = INTERVAL.match(value.strip())
    if match is None:
        raise click.BadParameter(
            "seconds, or a number with s, m, h or d (5m)", param_hint="--interval"
        )
    return int(match["n"]) * SECONDS[match["unit"]]


@cli.group()
def schedules() -> None:
    """Jobs submitted on a cron expression or an interval."""


@schedules.command(name="ls")
@pass_state
def schedules_ls(state: State) -> None:
    """List your schedules, newest first."""
    found = list(state.client.schedules.list())
    state.show(found, render.schedules_table(found))


@schedules.command(name="get")
@click.argument("schedule_id")
@pass_state
def schedules_get(state: State, schedule_id: str) -> None:
    """Show a schedule with its next due times and last runs."""
    schedule = state.client.schedules.get(schedule_id)
    state.show(schedule, render.schedule_detail(schedule))


@schedules.command(name="create")
@click.argument("name")
@click.option("--job", "job", required=True, help="The job each fire submits: JSON or @file.json.")
@click.option("--cron", help='A 5-field cron expression ("0 3 * * *"), read in --timezone.')
@click.option("--interval", help="Or every this many seconds (90, 5m, 1h, 1d).")
@click.option("--timezone", help="An IANA time zone [default: UTC].")
@click.option("--overlap", type=click.Choice(["allow", "skip", "cancel_previous"]))
@click.option("--catchup", type=click.Choice(["none", "latest", "all"]))
@click.option("--catchup-limit", type=int)
@click.option("--start-at", help="Not before this time (RFC 3339).")
@click.option("--end-at", help="Not after this time (RFC 3339).")
@pass_state
def schedules_create(
    state: State, /, name: str, job: str, cron: str | None, interval: str | None, **options: Any
) -> None:
    """Create the schedule NAME (give --cron or --interval)."""
    if (cron is None) == (interval is None):
        raise click.UsageError("give exactly one of --cron and --interval")
    body = read_json(job, "--job")
    if not isinstance(body, dict):
        raise click.BadParameter(
            "must be a JSON object (the body of POST /jobs/)", param_hint="--job"
        )
    given = {k: v for k, v in options.items() if v is not None}
    schedule = state.client.schedules.create(
        name,
        body,
        cron=cron if cron is not None else UNSET,
        interval_seconds=UNSET if interval is None else parse_interval(interval),
        **given,
    )
    state.show(schedule, render.schedule_detail(schedule))


@schedules.command(name="trigger")
@click.argument("schedule_id")
@pass_state
def schedules_trigger(state: State, schedule_id: str) -> None:
    """Fire a schedule now: shows the job it submitted."""
    job = state.client.schedules.trigger(schedule_id)
    state.show(job, render.job_detail(job))


@schedules.command(name="pause")
@click.argument("schedule_id")
@pass_state
def schedules_pause(state: State, schedule_id: str) -> None:
    """Stop a schedule's fires until resumed."""
    schedule = state.client.schedules.pause(schedule_id)
    state.show(schedule, render.schedule_detail(schedule))


@schedules.command(name="resume")
@click.argument("schedule_id")
@pass_state
def schedules_resume(state: State, schedule_id: str) -> None:
    """Fire a paused schedule again, from its next due time."""
    schedule = state.client.schedules.resume(schedule_id)
    state.show(schedule, render.schedule_detail(schedule))


@schedules.command(name="rm")
@click.argument("schedule_id")
@pass_state
def schedules_rm(state: State, schedule_id: str) -> None:
    """Delete a schedule (the jobs it submitted stay)."""
    state.client.schedules.delete(schedule_id)
    state.show({"deleted": schedule_id}, f"deleted schedule {schedule_id}")


@cli.group()
def limits() -> None:
    """Concurrency and rate limits (staff)."""


@limits.command(name="ls")
@pass_state
def limits_ls(state: State) -> None:
    """List the limit rules, with the leases each counts now."""
    rules = state.client.limits.list()
    state.show(rules, render.limits_table(rules))


def _none_or(value: str | None, convert: type) -> Any:
    """An option's value: not given (UNSET), ``none`` (None: lift the limit), or a value."""
    if value is None:
        return UNSET
    return None if value.lower() == "none" else convert(value)


@limits.command(name="set")
@click.argument("key")
@click.option("--max-concurrency", help="At most N of its jobs queued or running (none: lift).")
@click.option("--rate", help='At most this many start: "10/s", "600/m", "1000/h" (none: lift).')
@pass_state
def limits_set(state: State, key: str, max_concurrency: str | None, rate: str | None) -> None:
    """Create the rule of KEY (type:<job type>, a concurrency key, tenant:*) or change it."""
    try:
        fields = {"max_concurrency": _none_or(max_concurrency, int), "rate": _none_or(rate, str)}
    except ValueError as exc:
        raise click.BadParameter("a whole number, or none", param_hint="--max-concurrency") from exc
    rule = state.client.limits.find(key)
    if rule is None:
        rule = state.client.limits.create(key, **fields)
    else:
        rule = state.client.limits.update(rule, **fields)
    state.show(rule, render.limits_table([rule]))


@limits.command(name="rm")
@click.argument("key")
@pass_state
def limits_rm(state: State, key: str) -> None:
    """Delete the rule of KEY."""
    rule = state.client.limits.find(key)
    if rule is None:
        raise NotFound(f"no limit rule for {key!r}", status=404)
    state.client.limits.delete(rule)
    state.show({"deleted": key}, f"deleted the limit rule of {key}")
