"""``python -m draconic_sdk.cli``: the ``draconic`` command."""

from __future__ import annotations

from draconic_sdk.cli import main

main()
