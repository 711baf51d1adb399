"""``draconic``: the command line of the Draconic job platform (``pip install
'draconic-sdk[cli]'``). Tables by default, ``--json`` for scripts; exit codes in
``draconic_sdk.cli.errors``. Shell completion is click's:
``eval "$(_DRACONIC_COMPLETE=bash_source draconic)"`` (or ``draconic completion bash``)."""

from __future__ import annotations

from draconic_sdk.cli import jobs, ops, rules, worker
from draconic_sdk.cli.app import cli

__all__ = ["cli", "jobs", "main", "ops", "rules", "worker"]


def main() -> None:
    """The console script ``draconic``."""
    cli(prog_name="draconic")
