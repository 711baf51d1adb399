"""Celery tasks: thin. They take ids and call the runner.

Every attempt runs the one task ``draconic.execute_job``, published under its job type's name
(``jobs.engine.publish.monitoring_name``, Celery's ``shadow``), so Flower lists and filters
attempts by job type. The outcome is recorded by the runner before the task ends; the task
then tells Celery what it was, so that Celery's events and Flower agree with the job: a failed
attempt that will be retried ends as a Celery retry, one that failed for good as a failure.
"""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from celery.exceptions import Retry

from jobs.models import JobStatus
from workers.runner import run_attempt


class AttemptFailed(Exception):
    """The attempt failed and the failure is recorded; raised so Celery counts it failed."""


class AttemptTask(Task):  # type: ignore[type-arg]
    #: The main process's view of each delivery: it settles the attempt of a pool process
    #: that died running it (``workers.lifecycle``).
    Request = "workers.lifecycle:AttemptRequest"


@shared_task(
    name="draconic.execute_job",
    bind=True,
    acks_late=True,
    ignore_result=True,
    throws=(AttemptFailed,),  # expected: logged as a line, not as an unexpected error
    base=AttemptTask,
)
def execute_job(self: Any, job_id: str, attempt: int) -> str:
    """Run attempt ``attempt`` of job ``job_id``. Idempotent: a repeated delivery does nothing.
    Celery never re-sends it: retries are the platform's (a Retry raised here only marks the
    attempt as retried)."""
    outcome = run_attempt(job_id, int(attempt), worker=str(self.request.hostname or "unknown"))
    if outcome.status == JobStatus.RETRYING:
        raise Retry(outcome.summary, exc=AttemptFailed(outcome.summary))
    if outcome.status == JobStatus.FAILED:
        raise AttemptFailed(outcome.summary)
    return outcome.summary
