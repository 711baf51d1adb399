"""Job types of the fault-injection run (``tests.chaos``), loaded by its workers through
``DRACONIC_HANDLER_MODULES=tests.chaos.handlers``.

Every execution first appends one line ``job_id:attempt:pid:start_ts`` to the run log named by
``DRACONIC_CHAOS_RUN_LOG`` (one ``write`` on an ``O_APPEND`` descriptor, so lines of concurrent
processes never interleave), then sleeps ``payload.ms`` milliseconds. The run log is how the
chaos run proves that no attempt of a job ran twice.
"""

from __future__ import annotations

import os
import time
from typing import Any

from jobs.types import Handler, HandlerError, JobContext, register

RUN_LOG_ENV = "DRACONIC_CHAOS_RUN_LOG"


def record_execution(ctx: JobContext) -> None:
    """Append this execution to the run log (a no-op when the variable is not set)."""
    path = os.environ.get(RUN_LOG_ENV)
    if not path:
        return
    line = f"{ctx.job.id}:{ctx.attempt}:{os.getpid()}:{time.time():.6f}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


class ChaosHandler(Handler):
    """Records the execution, sleeps ``payload.ms`` (cancellable), then calls ``outcome``."""

    def run(self, ctx: JobContext) -> Any:
        record_execution(ctx)
        ms = float(ctx.payload.get("ms", 0))
        if ms > 0:
            ctx.wait(ms / 1000)
        return self.outcome(ctx)

    def outcome(self, ctx: JobContext) -> Any:
        return {"attempt": ctx.attempt}


@register("chaos_ok")
class ChaosOkHandler(ChaosHandler):
    """Succeeds on every attempt."""


@register("chaos_flaky")
class ChaosFlakyHandler(ChaosHandler):
    """Fails its first attempt with a retryable error, then succeeds."""

    def outcome(self, ctx: JobContext) -> Any:
        if ctx.attempt <= 1:
            raise HandlerError("chaos: flaky job fails its first attempt")
        return {"attempt": ctx.attempt}


@register("chaos_doomed")
class ChaosDoomedHandler(ChaosHandler):
    """Fails permanently on its first run: straight to the dead-letter queue."""

    def outcome(self, ctx: JobContext) -> Any:
        raise HandlerError("chaos: doomed job fails permanently", permanent=True)
