"""One attempt in an external pool: start it through the worker API (the fenced start: a
stale or duplicate delivery is refused with 409 and not run), run the job type while a
renewer thread keeps the lease alive and passes a cancel on, then report the outcome.

The type's RetryPolicy decides whether a failure is permanent (no retries). A soft time limit
(Celery's, from the job's ``timeout_seconds``) is reported as a timeout; the hard limit kills
the pool process, and the server's lease expiry settles that attempt as for its own workers.
"""

from __future__ import annotations

import json
import logging
import threading
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from draconic_sdk.jobtypes import JobType
from draconic_sdk.worker.api import Stale, WorkerApi, WorkerApiError
from draconic_sdk.worker.context import JobCancelled, JobContext

logger = logging.getLogger("draconic_sdk.worker")

try:  # the soft time limit exists only where Celery runs the job
    from celery.exceptions import SoftTimeLimitExceeded
except ImportError:  # pragma: no cover

    class SoftTimeLimitExceeded(Exception):  # type: ignore[no-redef]
        pass


@dataclass
class Runtime:
    """What the pool's task needs: the API, its types by name, and the worker's name."""

    api: WorkerApi
    types: Mapping[str, JobType]
    worker: str


class Renewer(threading.Thread):
    """Renews the attempt's lease every third of its lifetime; sets the cancel event when the
    server says the job was cancelled or the attempt is no longer running."""

    def __init__(self, ctx: JobContext, every: float) -> None:
        super().__init__(name=f"draconic-renew-{ctx.job_id}", daemon=True)
        self.ctx, self.every, self.done = ctx, max(every, 0.2), threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every):
            try:
                answer = self.ctx.api.renew(self.ctx.job_id, self.ctx.attempt)
            except Stale:
                self.ctx.cancel_event.set()  # superseded: its result would be refused
                return
            except Exception:  # a missed renewal is retried at the next tick
                logger.warning("lease renewal failed", exc_info=True)
                continue
            if answer.get("cancel_requested"):
                self.ctx.cancel_event.set()


def run_attempt(runtime: Runtime, job_id: str, attempt: int) -> str:
    """Run attempt ``attempt`` of ``job_id``; a line saying what happened."""
    try:
        started = runtime.api.start(job_id, attempt, worker=runtime.worker)
    except Stale:
        return "skipped: stale or duplicate delivery"
    ctx = JobContext(runtime.api, job_id=job_id, attempt=attempt, payload=started["payload"])
    renewer = Renewer(ctx, float(started["lease_seconds"]) / 3)
    renewer.start()
    try:
        outcome = _execute(runtime, ctx, started)
    finally:
        renewer.done.set()
    try:
        _report(runtime.api, ctx, outcome)
    except Stale:
        return "superseded: the server refused this attempt's late result"
    return str(outcome["kind"])


def _execute(runtime: Runtime, ctx: JobContext, started: Mapping[str, Any]) -> dict[str, Any]:
    jt = runtime.types.get(str(started["type"]))
    if jt is None:
        error = f"this pool's worker has no job type {started['type']!r}"
        return {"kind": "fail", "error": error, "permanent": True}
    try:
        result = jt.run(ctx, started["payload"])
        json.dumps(result)
    except JobCancelled:
        return {"kind": "fail", "error": "cancelled", "permanent": True}
    except SoftTimeLimitExceeded:
        error = f"timed out after {started['timeout_seconds']}s"
        return {"kind": "fail", "error": error, "timeout": True}
    except Exception as exc:
        permanent = bool(getattr(exc, "permanent", False))
        if jt.retry is not None and not jt.retry.retries(exc):
            permanent = True
        error = f"{type(exc).__name__}: {exc}"[:5000]
        trace = traceback.format_exc()[-20000:]
        return {"kind": "fail", "error": error, "traceback": trace, "permanent": permanent}
    return {"kind": "complete", "result": result}


def _report(api: WorkerApi, ctx: JobContext, outcome: dict[str, Any]) -> None:
    """Report the outcome. A result the server refuses as invalid (400, e.g. a NUL character
    jsonb cannot store) fails the attempt with the server's reason, rather than leaving it
    running until its lease expires and it is charged as lost."""
    fields = {k: v for k, v in outcome.items() if k != "kind"}
    if outcome["kind"] == "complete":
        try:
            api.complete(ctx.job_id, ctx.attempt, fields["result"])
        except WorkerApiError as exc:
            if exc.status != 400:
                raise
            outcome.update(kind="fail", error=f"the server refused the result: {exc.body}"[:5000])
            api.fail(ctx.job_id, ctx.attempt, error=outcome["error"])
    else:
        api.fail(ctx.job_id, ctx.attempt, **fields)
