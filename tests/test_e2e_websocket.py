"""A WebSocket client follows jobs that real scheduler and worker processes run.

The events come from the other processes through channels-redis (the same REDIS_URL), so this
checks the whole path: transition -> after-commit publish -> group -> consumer -> socket.
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework.authtoken.models import Token

from draconic.asgi import application
from jobs.models import JobStatus

pytestmark = pytest.mark.e2e

S = JobStatus
TIMEOUT = 90  # a hang guard for a broken platform, not a performance assertion


async def _socket(key: str, query: str = "") -> WebsocketCommunicator:
    comm = WebsocketCommunicator(application, f"/jobs/stream?token={key}{query}")
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert connected
    ack = await comm.receive_json_from(timeout=TIMEOUT)
    assert ack["type"] == "subscribed", ack
    return comm


async def _updates(comm: WebsocketCommunicator, job_id: str, last: str) -> list[dict[str, Any]]:
    """The job's events up to its ``last`` status (other messages are skipped)."""
    events: list[dict[str, Any]] = []
    while not events or events[-1]["status"] != last:
        message = await comm.receive_json_from(timeout=TIMEOUT)
        if message.get("type") == "job_update" and message["job_id"] == job_id:
            events.append(message)
    return events


def _follow(
    api: Any, body: dict[str, Any], last: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Submit ``body`` over REST with a socket open; return the live events up to ``last``,
    then the same job's history replayed by a second socket with ``since=0``."""
    key = Token.objects.get(user=api.user).key

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        comm = await _socket(key)
        response = await database_sync_to_async(api.post)("/jobs/", body, format="json")
        assert response.status_code == 201, response.content
        job_id = response.json()["id"]
        live = await _updates(comm, job_id, last)
        await comm.disconnect()
        again = await _socket(key, f"&job={job_id}&since=0")
        replayed = await _updates(again, job_id, last)
        await again.disconnect()
        return live, replayed

    return async_to_sync(scenario)()


def test_a_client_receives_every_transition_of_a_job_the_worker_runs(platform, api):
    platform.start_worker()
    platform.start_scheduler()
    live, replayed = _follow(api, {"type": "noop"}, S.COMPLETED)
    assert [e["status"] for e in live] == [S.PENDING, S.QUEUED, S.RUNNING, S.COMPLETED], (
        platform.logs()
    )
    assert [e["previous_status"] for e in live] == ["", S.PENDING, S.QUEUED, S.RUNNING]
    assert [e["attempt"] for e in live] == [0, 1, 1, 1]
    cursors = [e["cursor"] for e in live]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
    assert [(e["status"], e["cursor"]) for e in replayed] == [
        (e["status"], e["cursor"]) for e in live
    ]


def test_a_client_follows_a_failing_job_through_its_retry_to_failed(platform, api):
    platform.start_worker()
    platform.start_scheduler()
    live, replayed = _follow(api, {"type": "fail", "max_attempts": 2}, S.FAILED)
    expected = [S.PENDING, S.QUEUED, S.RUNNING, S.RETRYING, S.QUEUED, S.RUNNING, S.FAILED]
    assert [e["status"] for e in live] == expected, platform.logs()
    assert [e["attempt"] for e in live] == [0, 1, 1, 1, 2, 2, 2]
    assert [e["status"] for e in replayed] == expected
