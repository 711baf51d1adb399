"""What a job type run by the external runtime gets as ``ctx``: its job, a log and progress
into the job's log on Draconic, and cancellation (set by the lease renewer when the server
says the job was cancelled, or that the attempt was superseded)."""

from __future__ import annotations

import threading
from typing import Any

from draconic_sdk.worker.api import WorkerApi


class JobCancelled(Exception):
    """Raised by ``check_cancelled`` once the job was cancelled: the attempt ends cancelled."""


class JobContext:
    def __init__(
        self,
        api: WorkerApi,
        *,
        job_id: str,
        attempt: int,
        payload: dict[str, Any],
        cancel_event: threading.Event | None = None,
    ) -> None:
        self.api = api
        self.job_id = job_id
        self.attempt = attempt
        self.payload = payload
        self.cancel_event = cancel_event or threading.Event()

    def log(self, message: str, level: str = "info", **context: Any) -> None:
        self.api.log(self.job_id, self.attempt, message, level, context)

    def progress(self, fraction_or_dict: float | dict[str, Any]) -> None:
        self.api.progress(self.job_id, self.attempt, fraction_or_dict)

    def cancel_requested(self) -> bool:
        return self.cancel_event.is_set()

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise JobCancelled(f"job {self.job_id} was cancelled")

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``; JobCancelled as soon as the job is cancelled."""
        self.cancel_event.wait(seconds)
        self.check_cancelled()

    def parent_results(self) -> dict[str, Any]:
        return dict(self.api.parents(self.job_id, self.attempt))
