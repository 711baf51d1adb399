"""The django.tasks backend against a live platform: ``@task`` functions enqueued in this
process (a team's project) become Draconic jobs, sent on commit, run by the project's own
Draconic worker (``manage.py draconic_worker``, a separate process: ``tests.e2e.djt_live``),
and read back through ``get_result``."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone
from django_tasks import TaskResultStatus

from draconic_sdk import Client
from draconic_sdk.django_tasks import DraconicBackend
from draconic_sdk.django_tasks.compat import TaskResultDoesNotExist
from jobs.models import Job as JobRow
from jobs.models import Priority
from tests.e2e import djt_live, djt_tasks
from tests.e2e.sdk_live import Live

pytestmark = pytest.mark.e2e
bridged = djt_live.bridged  # the fixture

TIMEOUT = 120  # a hang guard for a broken platform, not a performance assertion


class Rollback(Exception):
    pass


def wait(live: Live, job_id: str) -> None:
    with Client(live.url, live.token) as client:
        client.wait(job_id, timeout=TIMEOUT)


def test_the_backend_is_the_one_configured_and_claims_every_capability(bridged: Live) -> None:
    assert isinstance(djt_tasks.add.get_backend(), DraconicBackend)
    flags = ("supports_defer", "supports_async_task", "supports_get_result", "supports_priority")
    assert all(getattr(djt_tasks.add.get_backend(), flag) is True for flag in flags)


def test_an_enqueue_in_a_transaction_is_sent_on_commit_and_runs(bridged: Live) -> None:
    with transaction.atomic():
        result = djt_tasks.add.enqueue(2, b=3)
        assert result.status == TaskResultStatus.READY and result.id
        # Its id is known at once, but nothing is sent before the commit.
        assert not JobRow.objects.filter(id=result.id).exists()
    stored = JobRow.objects.get(id=result.id)
    assert stored.type == "tests.e2e.djt_tasks.add" and stored.payload == {"a": 2, "b": 3}
    assert stored.idempotency_key == result.id
    wait(bridged, result.id)

    done = djt_tasks.add.get_result(result.id)
    assert done.status == TaskResultStatus.SUCCESSFUL and done.return_value == 5
    assert done.errors == [] and len(done.worker_ids) == 1
    assert done.worker_ids[0].startswith("djt/djt-worker")  # the project's own worker ran it
    assert done.enqueued_at <= done.started_at <= done.finished_at
    assert done.last_attempted_at == done.started_at
    assert done.kwargs == {"a": 2, "b": 3} and done.task.func is djt_tasks.add.func
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 5


def test_a_rolled_back_enqueue_sends_nothing(bridged: Live) -> None:
    with pytest.raises(Rollback), transaction.atomic():
        lost = djt_tasks.add.enqueue(1, 1)
        raise Rollback
    kept = djt_tasks.add.enqueue(4, 4)  # outside a transaction: sent at once
    wait(bridged, kept.id)  # a later send arrived and ran, so the lost one was not in flight
    assert not JobRow.objects.filter(id=lost.id).exists()
    assert list(JobRow.objects.values_list("id", flat=True)) == [JobRow.objects.get().id]
    with pytest.raises(TaskResultDoesNotExist):
        djt_tasks.add.get_result(lost.id)


@pytest.mark.parametrize(
    ("priority", "level"),
    [
        (-100, Priority.LOW),
        (-50, Priority.LOW),
        (-49, Priority.NORMAL),
        (-1, Priority.NORMAL),
        (0, Priority.NORMAL),
        (1, Priority.HIGH),
        (49, Priority.HIGH),
        (50, Priority.CRITICAL),
        (100, Priority.CRITICAL),
    ],
)
def test_django_priorities_map_onto_the_levels_keeping_the_exact_value(
    bridged: Live, priority: int, level: Priority
) -> None:
    result = djt_tasks.add.using(priority=priority, run_after=timezone.now() + timedelta(hours=1))
    sent = result.enqueue(1)
    stored = JobRow.objects.get(id=sent.id)
    assert (stored.priority, stored.priority_rank) == (level, priority)
    assert djt_tasks.add.get_result(sent.id).task.priority == priority


def test_run_after_holds_the_job_until_its_time(bridged: Live) -> None:
    later = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    sent = djt_tasks.add.using(run_after=later).enqueue(7)
    stored = JobRow.objects.get(id=sent.id)
    assert stored.run_at == later and stored.status == "pending"
    read = djt_tasks.add.get_result(sent.id)
    assert read.status == TaskResultStatus.READY and read.task.run_after == later
    with pytest.raises(ValueError, match="not finished"):
        read.return_value  # noqa: B018


def test_a_failed_job_reads_back_with_every_attempts_error_and_worker(
    bridged: Live, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    sent = djt_tasks.explode.enqueue("the shelf is empty", str(runs))
    wait(bridged, sent.id)
    failed = djt_tasks.explode.get_result(sent.id)
    attempts = JobRow.objects.get(id=sent.id).max_attempts
    assert attempts > 1 and len(runs.read_text().splitlines()) == attempts  # not vacuous
    assert failed.status == TaskResultStatus.FAILED and failed.finished_at is not None
    assert len(failed.errors) == attempts == len(failed.worker_ids) == failed.attempts
    for error in failed.errors:
        assert error.exception_class_path == "builtins.ValueError"
        assert error.exception_class is ValueError
        assert "the shelf is empty" in error.traceback and "Traceback" in error.traceback
    with pytest.raises(ValueError, match="failed"):
        failed.return_value  # noqa: B018


def test_a_task_taking_context_sees_its_attempt_and_keeps_the_earlier_errors(
    bridged: Live,
) -> None:
    sent = djt_tasks.succeed_on_attempt.enqueue(attempt=2)
    wait(bridged, sent.id)
    done = djt_tasks.succeed_on_attempt.get_result(sent.id)
    assert done.status == TaskResultStatus.SUCCESSFUL and done.return_value == {"attempt": 2}
    assert [e.exception_class_path for e in done.errors] == ["builtins.RuntimeError"]
    assert "attempt 1 is too early" in done.errors[0].traceback
    assert len(done.worker_ids) == 2


def test_aenqueue_and_aget_result_use_the_async_client(bridged: Live) -> None:
    async def scenario() -> tuple[str, object]:
        sent = await djt_tasks.add.aenqueue(20, 22)
        await asyncio.to_thread(wait, bridged, sent.id)
        done = await djt_tasks.add.aget_result(sent.id)
        return sent.id, done.return_value

    job_id, value = asyncio.run(scenario())
    assert value == 42 and JobRow.objects.filter(id=job_id).exists()


def test_a_bad_argument_is_refused_at_enqueue_and_the_server_names_the_field(
    bridged: Live,
) -> None:
    from django_tasks.exceptions import InvalidTaskError

    with pytest.raises(InvalidTaskError, match="missing a required argument"):
        djt_tasks.add.enqueue()
    with pytest.raises(InvalidTaskError, match="JSON"):
        djt_tasks.add.enqueue(object())
    from draconic_sdk import ValidationError

    with pytest.raises(ValidationError) as refused:
        djt_tasks.add.enqueue("two")  # the client cannot tell; the server's schema can
    assert "payload" in refused.value.errors
    assert JobRow.objects.count() == 0
