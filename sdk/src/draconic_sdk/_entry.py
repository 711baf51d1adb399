"""The ``draconic`` console script. It is installed with the client alone too; without the
``cli`` extra it says how to get it instead of failing on a missing import."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from draconic_sdk.cli import main as run
    except ModuleNotFoundError as exc:
        if exc.name not in ("click", "rich"):
            raise
        sys.stderr.write(
            f"the draconic command needs {exc.name}: pip install 'draconic-sdk[cli]' "
            "(from a checkout: pip install './sdk[cli]')\n"
        )
        sys.exit(2)
    run()
