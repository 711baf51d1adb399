"""The ``draconic`` group: its options, the state its commands share, its error handling."""

from __future__ import annotations

import logging
from typing import Any

import click

from draconic_sdk._version import __version__
from draconic_sdk.cli import errors, render
from draconic_sdk.client import Client
from draconic_sdk.errors import DraconicError


class State:
    """What every command shares: the options of the group and one client."""

    def __init__(self, url: str | None, token: str | None, as_json: bool, timeout: float) -> None:
        self.url, self.token, self.json, self.timeout = url, token, as_json, timeout
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.url, self.token, timeout=self.timeout)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def show(self, value: Any, table: Any) -> None:
        """``value`` as JSON with ``--json``, else ``table`` (a rich renderable)."""
        if self.json:
            render.print_json(value)
        else:
            render.out.print(table)


class DraconicGroup(click.Group):
    """Turns a client error into a message that says what to do next and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DraconicError as error:
            state = ctx.find_object(State)
            if state is not None and state.json:
                click.echo(errors.as_json(error), err=True)
            else:
                render.err.print(f"[red]error:[/] {error.message}", highlight=False)
                next_step = errors.hint(error)
                if next_step:
                    render.err.print(f"next: {next_step}", highlight=False)
            ctx.exit(errors.exit_code(error))


@click.group(cls=DraconicGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--url",
    envvar="DRACONIC_URL",
    help="The server [env DRACONIC_URL; default http://127.0.0.1:8000].",
)
@click.option("--token", envvar="DRACONIC_TOKEN", help="Your API token [env DRACONIC_TOKEN].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables (for scripts).")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds per HTTP request.")
@click.version_option(__version__, prog_name="draconic")
@click.pass_context
def cli(
    ctx: click.Context, url: str | None, token: str | None, as_json: bool, timeout: float
) -> None:
    """Submit, follow and operate Draconic jobs.

    \b
    Exit codes: 0 done; 1 a waited job failed or was cancelled (or a health check fails);
    2 bad usage; 3 invalid request; 4 no or wrong token, or not staff; 5 not found;
    6 conflict; 7 server unreachable or busy; 8 wait timed out.
    """
    logging.getLogger("httpx").setLevel(logging.WARNING)
    state = ctx.obj = State(url, token, as_json, timeout)
    ctx.call_on_close(state.close)


pass_state = click.make_pass_decorator(State)
