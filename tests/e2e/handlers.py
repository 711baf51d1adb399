"""Job types that only tests use, loaded by worker processes through
``DRACONIC_HANDLER_MODULES=tests.e2e.handlers`` (the way a deployment adds its own types)."""

from __future__ import annotations

import os
from typing import Any

from jobs.types import Handler, JobContext, register


@register("count_runs")
class CountRunsHandler(Handler):
    """Appends ``job_id:attempt`` to the file ``payload.path`` each time it runs, so a test
    can count how often a handler really ran; then sleeps ``payload.seconds``."""

    def run(self, ctx: JobContext) -> Any:
        with open(ctx.payload["path"], "a") as out:
            out.write(f"{ctx.job.id}:{ctx.attempt}\n")
            out.flush()
            os.fsync(out.fileno())
        seconds = float(ctx.payload.get("seconds", 0))
        if seconds:
            ctx.wait(seconds)
        return {"ran": True}


@register("busy_wait")
class BusyWaitHandler(Handler):
    """Ignores cancellation: sleeps ``payload.seconds`` without checking (for terminate)."""

    def run(self, ctx: JobContext) -> Any:
        import time

        time.sleep(float(ctx.payload.get("seconds", 1)))
        return {"slept": ctx.payload.get("seconds", 1)}


@register("slow_first_attempt")
class SlowFirstAttemptHandler(Handler):
    """Appends ``job_id:attempt`` to ``payload.path`` (and its process id to
    ``payload.pid_path``, if given); its first attempt then sleeps ``payload.seconds``
    (ignoring cancellation and lost leases if ``payload.stubborn``), later attempts return at
    once: a job that an interrupted first attempt leaves to a second one."""

    def run(self, ctx: JobContext) -> Any:
        import time

        if "pid_path" in ctx.payload:
            # Written whole, then renamed into place: a test that sees the file reads the pid
            # (it could see it created and still empty).
            partial = f"{ctx.payload['pid_path']}.partial"
            with open(partial, "w") as out:
                out.write(str(os.getpid()))
            os.replace(partial, ctx.payload["pid_path"])
        with open(ctx.payload["path"], "a") as out:
            out.write(f"{ctx.job.id}:{ctx.attempt}\n")
            out.flush()
            os.fsync(out.fileno())
        seconds = float(ctx.payload.get("seconds", 0)) if ctx.attempt == 1 else 0
        if ctx.payload.get("stubborn"):
            time.sleep(seconds)
        else:
            ctx.wait(seconds)
        return {"attempt": ctx.attempt}


@register("gate")
class GateHandler(Handler):
    """Runs until the file ``payload.path`` exists (waking early if cancelled): a job that
    holds its worker process and its resources exactly until the test opens the gate, where
    a fixed ``seconds`` would be a guess at how long the test's next steps take."""

    def run(self, ctx: JobContext) -> Any:
        from pathlib import Path

        gate = Path(ctx.payload["path"])
        while not gate.exists():
            ctx.wait(0.05)
        return {"opened": True}
