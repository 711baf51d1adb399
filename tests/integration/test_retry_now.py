"""Retry now (``jobs.engine.retry_now``): a ``retrying`` job's backoff ends at once; a job
that is not retrying any more is left alone, also when admission takes it at the same moment
on another connection."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from jobs.engine import retry_now, transitions
from jobs.models import ExecutionLog, Job, JobStatus
from tests.factories import move_to

S = JobStatus


@pytest.mark.django_db
def test_a_retrying_job_is_due_now_and_others_are_left_alone(job_factory: Any) -> None:
    waiting = move_to(job_factory(), S.RETRYING)
    Job.objects.filter(id=waiting.id).update(next_attempt_at=timezone.now() + timedelta(hours=1))
    others = [job_factory(), move_to(job_factory(), S.COMPLETED), move_to(job_factory(), S.FAILED)]
    done = retry_now.retry_now(job_ids=[waiting.id, *(j.id for j in others)])
    assert done == [waiting.id]
    assert Job.objects.get(id=waiting.id).next_attempt_at <= timezone.now()
    assert Job.objects.get(id=waiting.id).status == S.RETRYING
    assert [Job.objects.get(id=j.id).status for j in others] == [S.PENDING, S.COMPLETED, S.FAILED]
    logged = ExecutionLog.objects.filter(context__retry_now=True)
    assert list(logged.values_list("job_id", flat=True)) == [waiting.id]


def _race(job: Job) -> dict[str, Any]:
    """Admit ``job`` and retry it now at once, one thread (one connection) each."""
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}
    errors: list[BaseException] = []
    calls = {
        "admit": lambda: transitions.admit_jobs(job_ids=[job.id]),
        "hurry": lambda: retry_now.retry_now(job_ids=[job.id]),
    }

    def run(name: str) -> None:
        try:
            barrier.wait(timeout=30)
            results[name] = calls[name]()
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(name,)) for name in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_retry_now_racing_admission_never_logs_a_job_admission_took(job_factory: Any) -> None:
    for _ in range(10):
        job = move_to(job_factory(), S.RETRYING)  # due already: admission may take it
        results = _race(job)
        assert len(results["admit"]) == 1  # retry_now never stops an admission
        assert Job.objects.get(id=job.id).status == S.QUEUED
        hurried = ExecutionLog.objects.filter(job=job, context__retry_now=True)
        if results["hurry"]:
            # It went first: its line is written before the admission's.
            admitted = ExecutionLog.objects.filter(job=job, to_status=S.QUEUED).latest("id")
            assert hurried.get().id < admitted.id
        else:
            assert not hurried.exists()
