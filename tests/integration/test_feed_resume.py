"""A resumed feed misses nothing: rows that commit after a cursor the client saw, though their
ids are lower (issue 11, item 10).

The story: a batch's transaction inserts its jobs and their "submitted" log rows, so it takes
log ids, and is slow to commit. Meanwhile another job's change commits with a higher id and its
event reaches a client, which keeps that cursor, disconnects, and resumes with
``since=<cursor>`` once the batch has committed. Reading "ids after the cursor" loses the
batch for good. The batch (or the handler's log line) runs through the real code path in a
thread of its own, so on a second database connection, inside a transaction the test holds
open.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.db import connection, transaction
from rest_framework.test import APIClient

from jobs.api.submit import job_submit_batch
from jobs.engine.cancel import job_cancel
from jobs.live import resume
from jobs.live.resume import Snapshot
from jobs.models import ExecutionLog, Job, JobStatus
from jobs.types.handler import JobContext
from tests.factories import make_spec, move_to
from tests.integration.test_websocket import TIMEOUT, submit, subscribed

pytestmark = pytest.mark.django_db(transaction=True)

S = JobStatus


class HeldTransaction:
    """Runs ``work`` in a thread (its own connection) inside ``transaction.atomic()``, and
    commits only when ``commit()`` is called. ``log_ids`` are the ids of the log rows the
    transaction wrote, read on its own connection (nobody else can see them yet)."""

    def __init__(self, work: Callable[[], list[Job]]) -> None:
        self._work = work
        self._written = threading.Event()
        self._release = threading.Event()
        self.jobs: list[Job] = []
        self.log_ids: list[int] = []
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        try:
            with transaction.atomic():
                self.jobs = self._work()
                job_ids = [job.id for job in self.jobs]
                self.log_ids = list(
                    ExecutionLog.objects.filter(job_id__in=job_ids).values_list("id", flat=True)
                )
                self._written.set()
                assert self._release.wait(TIMEOUT)
        except BaseException as exc:  # surfaced in the test's thread
            self.errors.append(exc)
        finally:
            self._written.set()
            connection.close()

    def start(self) -> HeldTransaction:
        self._thread.start()
        assert self._written.wait(TIMEOUT)
        assert not self.errors, self.errors
        return self

    def commit(self) -> None:
        self._release.set()
        self._thread.join(TIMEOUT)
        assert not self._thread.is_alive()
        assert not self.errors, self.errors


def batch_of(owner: Any, size: int) -> Callable[[], list[Job]]:
    return lambda: job_submit_batch(
        owner=owner, specs=[make_spec(key=f"k{i}") for i in range(size)]
    )


@pytest.mark.parametrize("scope", ["everything", "batch", "job"])
def test_a_resume_replays_a_batch_that_committed_after_the_cursor_the_client_saw(user, scope):
    batch = HeldTransaction(batch_of(user, 3)).start()

    async def scenario() -> None:
        comm = await subscribed(user)
        other = await submit(user)  # commits now, with a higher log id than the batch's rows
        seen = await comm.receive_json_from(timeout=TIMEOUT)
        assert seen["job_id"] == str(other.id) and seen["status"] == S.PENDING
        cursor = seen["cursor"]
        assert cursor > max(batch.log_ids)  # the gap: lower ids, not committed yet
        await comm.disconnect()

        await database_sync_to_async(batch.commit)()  # its live events reach nobody
        narrowed = {
            "everything": "",
            "batch": f"batch={batch.jobs[0].batch_id}&",
            "job": f"job={batch.jobs[1].id}&",
        }[scope]
        comm = await subscribed(user, f"?{narrowed}since={cursor}")
        replayed = []
        while (message := await comm.receive_json_from(timeout=TIMEOUT))["type"] != "replay_done":
            replayed.append(message)
        expected = batch.jobs if scope != "job" else batch.jobs[1:2]
        assert [(m["job_id"], m["status"]) for m in replayed] == [
            (str(job.id), S.PENDING) for job in expected
        ]
        assert all(m["replay"] for m in replayed)
        # Where to resume next: still the cursor it had, not the (lower) last id replayed.
        assert message["cursor"] == cursor and message["count"] == len(expected)
        await comm.disconnect()

    async_to_sync(scenario)()


def test_a_resume_after_a_quiet_cursor_replays_only_the_later_changes(user):
    """Nothing ran beside the cursor's row: the answer is exactly the rows after it (the
    window of concurrent transactions adds nothing)."""

    async def scenario() -> None:
        first = await submit(user)
        second = await submit(user)
        cursor = await database_sync_to_async(
            lambda: ExecutionLog.objects.filter(job=first).latest("id").id
        )()
        comm = await subscribed(user, f"?since={cursor}")
        replayed = await comm.receive_json_from(timeout=TIMEOUT)
        assert (replayed["job_id"], replayed["status"]) == (str(second.id), S.PENDING)
        done = await comm.receive_json_from(timeout=TIMEOUT)
        assert done == {"type": "replay_done", "count": 1, "cursor": replayed["cursor"]}
        await comm.disconnect()

    async_to_sync(scenario)()


def test_logs_since_a_line_include_a_line_that_committed_after_it(api: APIClient, user):
    """A handler that logs inside its own transaction writes its line before the cancel request
    that arrives meanwhile, and commits after it: ``?since=<the cancel's id>`` must bring it."""
    job = move_to(submit_sync(user), S.RUNNING)

    def handler_step() -> list[Job]:
        JobContext(job).log("step 1 of 2, in the handler's transaction")
        return [job]

    handler = HeldTransaction(handler_step).start()
    job_cancel(job=job)  # running: only requested, and logged at once
    lines = api.get(f"/jobs/{job.id}/logs").json()["results"]
    assert lines[-1]["message"].startswith("cancel requested")
    since = lines[-1]["id"]
    assert since > max(handler.log_ids)
    handler.commit()

    later = api.get(f"/jobs/{job.id}/logs?since={since}").json()["results"]
    assert [line["message"] for line in later] == ["step 1 of 2, in the handler's transaction"]


def submit_sync(user: Any) -> Job:
    return async_to_sync(submit)(user)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10:20:", Snapshot(10, 20, ())), ("10:20:10,14,15", Snapshot(10, 20, (10, 14, 15)))],
)
def test_a_snapshot_reads_as_postgresql_writes_it(text: str, expected: Snapshot) -> None:
    assert Snapshot.parse(text) == expected


def test_a_cursor_older_than_the_snapshot_columns_resumes_after_its_id(user):
    """Rows written before the migration have no snapshot (the columns were added without
    rewriting the table): resuming from one reads the ids after it, as before."""
    first, second = submit_sync(user), submit_sync(user)
    old = ExecutionLog.objects.get(job=first)
    ExecutionLog.objects.filter(id=old.id).update(xact_id=None, snapshot=None)
    lines = ExecutionLog.objects.filter(resume.missed_since(old.id))
    assert list(lines.values_list("job_id", flat=True)) == [second.id]
