"""The baseline's one task (procrastinate's Django integration finds ``tasks`` modules)."""

from __future__ import annotations

from procrastinate.contrib.django import app


@app.task(name="bench.noop")
def noop(n: int) -> None:
    """Does nothing: what is measured is the queue around it."""
