"""Diagnostic job types for smoke tests and benchmarks: ``noop`` and ``fail``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobs.types import Handler, HandlerError, JobContext, register


def _seconds_error(payload: Mapping[str, Any]) -> dict[str, str]:
    seconds = payload.get("seconds", 0)
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not 0 <= seconds <= 3600
    ):
        return {"payload.seconds": "must be a number of seconds between 0 and 3600"}
    return {}


@register("noop", diagnostic=True)
class NoopHandler(Handler):
    """Returns at once, or after ``payload.seconds`` (waking early if cancelled)."""

    def validate_payload(self, payload: Mapping[str, Any]) -> dict[str, str]:
        return _seconds_error(payload)

    def run(self, ctx: JobContext) -> Any:
        seconds = float(ctx.payload.get("seconds", 0))
        if seconds:
            ctx.wait(seconds)
        return {"ok": True, "slept": seconds}


@register("fail", diagnostic=True)
class FailHandler(Handler):
    """Raises; ``payload.permanent`` makes the error non-retryable. With
    ``payload.fail_attempts`` N, only attempts 1 to N fail (counted over the job's whole life,
    re-drives included) and the next one succeeds."""

    def validate_payload(self, payload: Mapping[str, Any]) -> dict[str, str]:
        errors = _seconds_error(payload)
        if not isinstance(payload.get("permanent", False), bool):
            errors["payload.permanent"] = "must be true or false"
        times = payload.get("fail_attempts")
        if times is not None and (type(times) is not int or not 0 <= times <= 100):
            errors["payload.fail_attempts"] = "must be a whole number of attempts from 0 to 100"
        return errors

    def run(self, ctx: JobContext) -> Any:
        seconds = float(ctx.payload.get("seconds", 0))
        if seconds:
            ctx.wait(seconds)
        times = ctx.payload.get("fail_attempts")
        if times is not None and ctx.attempt > times:
            return {"ok": True, "failed_attempts": times}
        message = str(ctx.payload.get("message", "the fail job type always fails"))[:500]
        raise HandlerError(message, permanent=bool(ctx.payload.get("permanent", False)))
