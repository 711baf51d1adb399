"""The operator commands (staff): dlq ls / retry / retry-all, health; and completion."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from draconic_sdk.cli import errors, render
from draconic_sdk.cli.app import State, cli, pass_state


@cli.group()
def dlq() -> None:
    """The dead-letter queue (staff)."""


@dlq.command(name="ls")
@click.option("--type", "type_", metavar="TYPE")
@click.option("--reason", help="non_retryable, max_attempts, timeout, worker_lost, ...")
@click.option("--limit", default=50, show_default=True, help="At most this many (0: all).")
@pass_state
def dlq_ls(state: State, type_: str | None, reason: str | None, limit: int) -> None:
    """List the open dead letters, newest first."""
    letters = []
    for letter in state.client.dlq.list(type=type_, reason=reason):
        letters.append(letter)
        if limit and len(letters) >= limit:
            break
    state.show(letters, render.dead_letters_table(letters))


@dlq.command(name="retry")
@click.argument("job_id")
@click.option("--no-descendants", is_flag=True, help="Leave the descendants its failure cancelled.")
@pass_state
def dlq_retry(state: State, job_id: str, no_descendants: bool) -> None:
    """Send one dead-lettered job back to pending."""
    requeued = state.client.dlq.retry(job_id, descendants=not no_descendants)
    text = f"{requeued.job_id} is {requeued.status}; revived {len(requeued.revived)} descendants"
    state.show(requeued, text)


@dlq.command(name="retry-all")
@click.option("--type", "type_", metavar="TYPE")
@click.option("--reason")
@click.option("--all", "all_", is_flag=True, help="Every open dead letter (no filter).")
@click.option("--dry-run", is_flag=True, help="Only count them; nothing changes.")
@click.option("--no-descendants", is_flag=True)
@pass_state
def dlq_retry_all(
    state: State,
    type_: str | None,
    reason: str | None,
    all_: bool,
    dry_run: bool,
    no_descendants: bool,
) -> None:
    """Re-drive the dead letters matching --type/--reason (or --all); 10,000 at most a call."""
    if not (type_ or reason or all_):
        raise click.UsageError("give --type, --reason or --all (a bulk re-drive needs a filter)")
    result = state.client.dlq.retry_all(
        type=type_, reason=reason, all=all_, dry_run=dry_run, descendants=not no_descendants
    )
    if dry_run:
        text = f"would re-drive {result.would_requeue}"
    else:
        text = f"re-drove {result.requeued}, revived {result.revived} descendants"
    state.show(result, text)


@cli.command()
@pass_state
def health(state: State) -> None:
    """Readiness of every dependency (staff); exit 1 if one fails."""
    report = state.client.health()
    state.show(report, render.health_table(report))
    if not report.ok:
        raise click.exceptions.Exit(errors.JOB_FAILED)


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script: eval "$(draconic completion bash)"."""
    complete = get_completion_class(shell)
    if complete is None:  # pragma: no cover - the three are built in
        raise click.UsageError(f"no completion for {shell}")
    root = ctx.find_root().command
    click.echo(complete(root, {}, "draconic", "_DRACONIC_COMPLETE").source())
