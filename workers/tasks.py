"""Celery tasks: thin. They take ids and call the runner."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from workers.runner import run_attempt


@shared_task(name="draconic.execute_job", bind=True, acks_late=True, ignore_result=True)
def execute_job(self: Any, job_id: str, attempt: int) -> str:
    """Run attempt ``attempt`` of job ``job_id``. Idempotent: a repeated delivery does nothing."""
    return run_attempt(job_id, int(attempt), worker=str(self.request.hostname or "unknown"))
