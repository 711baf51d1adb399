"""A pool worker's graceful stop (``draconic_sdk.worker.shutdown``) past its grace: the pool
process running an attempt is ended *before* the attempt is handed back, and an attempt whose
process cannot be ended is not handed back at all.

The bug this guards against: the hand-back came first, so the job was ``pending`` again (and
could start on another worker) while the old process still ran it. The pools here are real
(billiard's, as the prefork pool uses, and Celery's solo pool); only the worker API's HTTP is
replaced, by a recorder that looks at the attempt's process when the hand-back arrives."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import billiard
import pytest
from celery.concurrency.solo import TaskPool as SoloPool
from celery.worker import state

from draconic_sdk.worker.api import WorkerApi
from draconic_sdk.worker.shutdown import TASK_NAME, GracefulStop


class RecordingApi(WorkerApi):
    """The worker API, minus its HTTP: records each hand-back and whether the attempt's
    process had exited by then."""

    def __init__(self, process: Any = None) -> None:
        super().__init__("http://server.invalid", "token")
        self.process, self.handed_back = process, []

    def hand_back(self, job_id: str, attempt: int, *, worker: str) -> Any:
        if self.process is not None:
            self.process.join(10)  # returns at once if it was killed; waits if not
        exited = self.process is None or self.process.exitcode is not None
        self.handed_back.append((job_id, attempt, exited))
        return {"status": "pending"}


class Delivery(SimpleNamespace):
    """What the stop reads of a Celery request (its active set holds weak references)."""

    __hash__ = object.__hash__


def delivery(pid: int | None) -> Any:
    return Delivery(type=TASK_NAME, args=("j1", 1), worker_pid=pid)


def handler(started: str) -> None:
    """The attempt's handler: says it has started, then runs on."""
    Path(started).touch()
    time.sleep(600)


@pytest.fixture
def process_pool(tmp_path: Path) -> Iterator[Any]:
    pool = billiard.Pool(processes=1)
    started = tmp_path / "started"
    pool.apply_async(handler, (str(started),))
    # Wait until the handler runs: before that the pool process may be writing its ACK, and
    # killed while it holds the result queue's lock it would leave terminate() waiting forever.
    deadline = time.monotonic() + 60
    while not started.exists():
        assert time.monotonic() < deadline, "the pool process never started its job"
        time.sleep(0.01)
    yield pool
    pool.terminate()


def stop_now(stop: GracefulStop, request: Any) -> None:
    """A cold shutdown (no grace) while ``request`` runs, through Celery's own signal path."""
    state.active_requests.add(request)
    try:
        stop._shutting_down(how="Cold")
        for thread in threading.enumerate():  # none left if it was quick
            if thread.name == "draconic-shutdown":
                thread.join(30)
    finally:
        state.active_requests.discard(request)


def test_the_pool_process_is_ended_before_its_attempt_is_handed_back(process_pool: Any) -> None:
    (process,) = process_pool._pool
    api = RecordingApi(process)
    stop = GracefulStop(api, worker="w1", grace=0)
    stop.consumer = SimpleNamespace(pool=process_pool)
    stop_now(stop, delivery(process.pid))
    assert api.handed_back == [("j1", 1, True)]
    assert process.exitcode == -9


@pytest.mark.parametrize(
    ("consumer", "pid"),
    [
        pytest.param(None, 4242, id="the worker is not ready yet"),
        pytest.param(SimpleNamespace(pool=SoloPool()), 4242, id="a solo pool"),
        pytest.param(SimpleNamespace(pool=SoloPool()), None, id="no process recorded"),
    ],
)
def test_an_attempt_whose_process_cannot_be_ended_is_not_handed_back(
    consumer: Any, pid: int | None
) -> None:
    api = RecordingApi()
    stop = GracefulStop(api, worker="w1", grace=0)
    stop.consumer = consumer
    stop_now(stop, delivery(pid))
    assert api.handed_back == []
