"""A team's own task functions, as the django.tasks backend and the Celery bridge see them:
``@task`` functions (django-tasks) and ``@shared_task`` functions on ``DraconicTask``. The
tests enqueue them in the test process; the team's own Draconic worker (the pool ``djt``,
``tests.e2e.djt_live``) runs them. Each one that counts its runs appends a line to ``path``."""

from __future__ import annotations

from pathlib import Path

from celery import shared_task
from django_tasks import TaskContext, task

from draconic_sdk.celery_bridge import DraconicTask


def _count(path: str) -> int:
    """Append one line to ``path``; how many lines it has now (this run included)."""
    with open(path, "a") as out:
        out.write("ran\n")
    return len(Path(path).read_text().splitlines())


@task()
def add(a: int, b: int = 0) -> int:
    """Adds two numbers."""
    return a + b


@task()
def explode(message: str, path: str) -> None:
    """Fails every attempt, with a ValueError."""
    _count(path)
    raise ValueError(message)


@task(takes_context=True)
def succeed_on_attempt(context: TaskContext, attempt: int) -> dict[str, int]:
    """Fails (RuntimeError) until the ``attempt``-th attempt, which returns the attempt."""
    if context.attempt < attempt:
        raise RuntimeError(f"attempt {context.attempt} is too early")
    return {"attempt": context.attempt}


@shared_task(base=DraconicTask, autoretry_for=(ConnectionError,), max_retries=2, retry_backoff=1)
def flaky_total(values: list[int], failures: int, path: str) -> int:
    """Raises ConnectionError on its first ``failures`` runs, then returns the sum."""
    if _count(path) <= failures:
        raise ConnectionError("the shop's stock service did not answer")
    return sum(values)


@shared_task(base=DraconicTask, rate_limit="30/m", soft_time_limit=20)
def label(sku: str, copies: int = 1) -> str:
    """Prints labels (a rate-limited, time-limited task)."""
    return f"{sku} x{copies}"
