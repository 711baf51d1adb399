"""The external pool's job types (``draconic_sdk.job_type``): nothing here imports Draconic's
server code; the worker runs them with its own environment."""

from __future__ import annotations

import os
import time
from typing import Any

from draconic_sdk import job_type


@job_type("ext.echo")
def echo(ctx: Any, n: int) -> dict[str, Any]:
    """Logs a line, reports progress, returns twice ``n`` and what its process can see."""
    ctx.log("echo started", n=n)
    ctx.progress(0.5)
    ctx.progress({"step": "done"})
    return {"doubled": 2 * n, "database_url": os.environ.get("DATABASE_URL", "")}


@job_type("ext.count_runs")
def count_runs(ctx: Any, path: str, seconds: float = 0) -> dict[str, Any]:
    """Appends ``job_id:attempt`` to ``path`` each time it runs, then sleeps (not cancellable:
    a late result comes back whole)."""
    with open(path, "a") as out:
        out.write(f"{ctx.job_id}:{ctx.attempt}\n")
        out.flush()
        os.fsync(out.fileno())
    time.sleep(seconds)
    return {"attempt": ctx.attempt}


@job_type("ext.wait")
def wait(ctx: Any, seconds: float) -> dict[str, Any]:
    """Waits ``seconds``, stopping as soon as the job is cancelled."""
    ctx.log("waiting")
    ctx.wait(seconds)
    return {"waited": seconds}


@job_type("ext.slow_first_attempt")
def slow_first_attempt(ctx: Any, path: str, seconds: float, stubborn: bool = False) -> int:
    """Appends ``job_id:attempt`` to ``path``; its first attempt then lasts ``seconds``, waiting
    on its context (a cancel or a superseded attempt stops it) or, ``stubborn``, ignoring it."""
    with open(path, "a") as out:
        out.write(f"{ctx.job_id}:{ctx.attempt}\n")
    if ctx.attempt == 1:
        if stubborn:
            time.sleep(seconds)
        else:
            ctx.wait(seconds)
    return int(ctx.attempt)


@job_type("ext.unstorable", max_attempts=1)
def unstorable(ctx: Any) -> dict[str, Any]:
    """Returns a NUL character, which PostgreSQL's jsonb cannot store: the server refuses it."""
    return {"text": "before\x00after"}
