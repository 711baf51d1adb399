"""``draconic worker --app mypackage.jobs --pool NAME``: run an external pool's worker on the
job types of the team's own modules (needs the ``worker`` extra: Celery)."""

from __future__ import annotations

import os
import sys

import click

from draconic_sdk.cli.app import State, cli, pass_state


@cli.command("worker")
@click.option(
    "--app", "apps", multiple=True, required=True, help="A module with job types (repeatable)."
)
@click.option("--pool", required=True, help="The pool's name (its token's pool).")
@click.option("--concurrency", "-c", default=2, show_default=True, help="Jobs at once.")
@click.option("--name", default=None, help="This worker's name [default: host-pid].")
@click.option(
    "--shutdown-grace",
    type=float,
    default=30.0,
    show_default=True,
    envvar="DRACONIC_SHUTDOWN_GRACE_SECONDS",
    help="Seconds a stopping worker (SIGTERM) lets running jobs finish, then hands them back.",
)
@click.option(
    "--worker-token",
    envvar="DRACONIC_WORKER_TOKEN",
    required=True,
    help="The pool's worker token [env DRACONIC_WORKER_TOKEN].",
)
@click.option(
    "--broker-url",
    envvar="DRACONIC_BROKER_URL",
    required=True,
    help="Draconic's Redis broker [env DRACONIC_BROKER_URL].",
)
@pass_state
def worker(
    state: State,
    apps: tuple[str, ...],
    pool: str,
    concurrency: int,
    name: str | None,
    shutdown_grace: float,
    worker_token: str,
    broker_url: str,
) -> None:
    """Register POOL with the job types of --app and run them from the pool's queues."""
    try:
        from draconic_sdk.worker.app import WorkerConfig, run_worker
    except ModuleNotFoundError as exc:
        raise click.UsageError(
            f"the worker needs {exc.name}: pip install 'draconic-sdk[worker]'"
        ) from exc
    sys.path.insert(0, os.getcwd())  # --app names modules of the current project
    config = WorkerConfig(
        url=state.url or "http://127.0.0.1:8000",
        token=worker_token,
        broker_url=broker_url,
        pool=pool,
        modules=list(apps),
        concurrency=concurrency,
        shutdown_grace=shutdown_grace,
    )
    if name:
        config.name = name
    run_worker(config)
