"""The WebSocket feed ``/jobs/stream``, through the real ASGI application and channels-redis.

Each test is one coroutine run with ``async_to_sync``; the database is reached through
``database_sync_to_async``. State changes are made by the real services and transitions, whose
events go out after commit through the channel layer, as in production.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from rest_framework.authtoken.models import Token

from draconic.asgi import application
from jobs.api.submit import job_submit, job_submit_batch
from jobs.engine import transitions
from jobs.engine.attempts import job_complete
from jobs.engine.cancel import job_cancel
from jobs.live import consumers, events
from jobs.live.events import Change
from jobs.models import ExecutionLog, Job, JobStatus
from tests.factories import make_spec

pytestmark = pytest.mark.django_db(transaction=True)

S = JobStatus
TIMEOUT = 30  # a hang guard only


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async_to_sync(scenario)()


@database_sync_to_async
def token_for(user: Any) -> str:
    return Token.objects.get_or_create(user=user)[0].key


@database_sync_to_async
def submit(owner: Any, **spec: Any) -> Job:
    return job_submit(owner=owner, spec=make_spec(**spec))[0]


@database_sync_to_async
def submit_batch(owner: Any, size: int = 2) -> list[Job]:
    return job_submit_batch(owner=owner, specs=[make_spec(key=f"k{i}") for i in range(size)])


@database_sync_to_async
def move(job: Job, from_: JobStatus, to: JobStatus) -> None:
    """One real move of the engine, from ``from_`` (checked) to ``to``."""
    fresh = Job.objects.get(id=job.id)
    assert fresh.status == from_
    if to == JobStatus.QUEUED:
        assert transitions.admit_jobs(job_ids=[job.id])
    elif to == JobStatus.RUNNING:
        assert transitions.start_attempt(job_id=job.id, attempt=fresh.attempt, worker="w1")
    else:
        assert to == JobStatus.COMPLETED
        assert job_complete(job_id=job.id, attempt=fresh.attempt, result=None)


@database_sync_to_async
def cancel(job: Job) -> None:
    job_cancel(job=job)


@database_sync_to_async
def last_change(job: Job) -> Change:
    """The job's last logged state change, as the Change that announced it."""
    log = ExecutionLog.objects.exclude(to_status="").filter(job=job).latest("id")
    fresh = Job.objects.get(id=job.id)
    return Change(
        job_id=fresh.id,
        owner_id=fresh.owner_id,
        type=fresh.type,
        priority=fresh.priority,
        status=log.to_status,
        previous_status=log.from_status,
        attempt=log.attempt,
        batch_id=fresh.batch_id,
        log_id=log.id,
        timestamp=log.created_at,
    )


async def connect(
    query: str = "", headers: list[tuple[bytes, bytes]] | None = None
) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(application, f"/jobs/stream{query}", headers=headers or [])
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert connected
    return comm


async def subscribed(user: Any, query: str = "") -> WebsocketCommunicator:
    """A socket of ``user`` (token in the query string) whose subscription is acknowledged."""
    token = f"token={await token_for(user)}"
    comm = await connect(f"{query}&{token}" if query else f"?{token}")
    message = await comm.receive_json_from(timeout=TIMEOUT)
    assert message["type"] == "subscribed", message
    return comm


async def updates_until(comm: WebsocketCommunicator, job: Job, status: str) -> list[dict[str, Any]]:
    """Every message received up to the event of ``job`` reaching ``status``, included."""
    received = []
    while True:
        message = await comm.receive_json_from(timeout=TIMEOUT)
        received.append(message)
        if message.get("job_id") == str(job.id) and message.get("status") == status:
            return received


def seen(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["job_id"], m["status"]) for m in messages if m["type"] == "job_update"]


async def closed_with(comm: WebsocketCommunicator) -> int:
    while True:
        output = await comm.receive_output(timeout=TIMEOUT)
        if output["type"] == "websocket.close":
            return int(output["code"])


# --- Authentication -----------------------------------------------------------------------


def test_an_anonymous_socket_gets_an_error_and_close_code_4401():
    async def scenario() -> None:
        comm = await connect()
        error = await comm.receive_json_from(timeout=TIMEOUT)
        assert error["type"] == "error" and error["code"] == 4401
        assert await closed_with(comm) == 4401

    run(scenario)


def test_a_wrong_token_is_refused_even_with_a_valid_session(user):
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()

    async def scenario() -> None:
        comm = await connect("?token=not-a-token", headers=[(b"cookie", cookie)])
        assert (await comm.receive_json_from(timeout=TIMEOUT))["code"] == 4401
        assert await closed_with(comm) == 4401

    run(scenario)


def test_a_token_in_the_query_string_authenticates(user):
    async def scenario() -> None:
        comm = await connect(f"?token={await token_for(user)}")
        message = await comm.receive_json_from(timeout=TIMEOUT)
        assert message == {
            "type": "subscribed",
            "scope": "own",
            "job": None,
            "batch": None,
            "since": None,
        }
        await comm.disconnect()

    run(scenario)


def test_a_token_in_the_authorization_header_authenticates(user):
    async def scenario() -> None:
        key = await token_for(user)
        comm = await connect(headers=[(b"authorization", f"Token {key}".encode())])
        assert (await comm.receive_json_from(timeout=TIMEOUT))["type"] == "subscribed"
        job = await submit(user)
        assert seen(await updates_until(comm, job, S.PENDING)) == [(str(job.id), S.PENDING)]
        await comm.disconnect()

    run(scenario)


def test_a_django_session_authenticates(user):
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()

    async def scenario() -> None:
        comm = await connect(headers=[(b"cookie", cookie), (b"origin", b"http://localhost")])
        assert (await comm.receive_json_from(timeout=TIMEOUT))["type"] == "subscribed"
        await comm.disconnect()

    run(scenario)


def test_a_foreign_origin_is_refused_at_the_handshake(user):
    async def scenario() -> None:
        key = await token_for(user)
        comm = WebsocketCommunicator(
            application, f"/jobs/stream?token={key}", headers=[(b"origin", b"https://evil.example")]
        )
        connected, _ = await comm.connect(timeout=TIMEOUT)
        assert not connected

    run(scenario)


# --- What a client sees -------------------------------------------------------------------


def test_a_client_sees_its_own_jobs_transitions_and_never_another_users(user, other_user):
    async def scenario() -> None:
        comm = await subscribed(user)
        theirs = await submit(other_user)
        await move(theirs, S.PENDING, S.QUEUED)
        mine = await submit(user)
        await move(mine, S.PENDING, S.QUEUED)
        await cancel(mine)
        messages = await updates_until(comm, mine, S.CANCELLED)
        assert seen(messages) == [(str(mine.id), s) for s in (S.PENDING, S.QUEUED, S.CANCELLED)]
        assert [m["previous_status"] for m in messages] == ["", S.PENDING, S.QUEUED]
        assert messages[1]["cursor"] > messages[0]["cursor"]
        assert {"attempt", "priority", "job_type", "batch_id", "timestamp"} <= set(messages[0])
        assert await comm.receive_nothing(timeout=0.5)
        await comm.disconnect()

    run(scenario)


def test_job_query_filters_to_that_one_job(user):
    async def scenario() -> None:
        watched = await submit(user)
        comm = await subscribed(user, f"?job={watched.id}")
        other = await submit(user)
        await move(other, S.PENDING, S.QUEUED)
        await move(watched, S.PENDING, S.QUEUED)
        assert seen(await updates_until(comm, watched, S.QUEUED)) == [(str(watched.id), S.QUEUED)]
        await comm.disconnect()

    run(scenario)


def test_batch_query_filters_to_that_one_batch(user):
    async def scenario() -> None:
        batch = await submit_batch(user)
        comm = await subscribed(user, f"?batch={batch[0].batch_id}")
        loose = await submit(user)
        await move(loose, S.PENDING, S.QUEUED)
        await move(batch[1], S.PENDING, S.QUEUED)
        await move(batch[0], S.PENDING, S.QUEUED)
        messages = await updates_until(comm, batch[0], S.QUEUED)
        assert seen(messages) == [(str(batch[1].id), S.QUEUED), (str(batch[0].id), S.QUEUED)]
        assert {m["batch_id"] for m in messages} == {str(batch[0].batch_id)}
        await comm.disconnect()

    run(scenario)


def test_subscribing_to_another_users_job_is_an_error_and_sends_nothing(user, other_user):
    async def scenario() -> None:
        theirs = await submit(other_user)
        comm = await connect(f"?job={theirs.id}&token={await token_for(user)}")
        error = await comm.receive_json_from(timeout=TIMEOUT)
        assert error["type"] == "error" and error["code"] == "not_found"
        await comm.send_json_to({"action": "subscribe", "job": str(theirs.id)})
        assert (await comm.receive_json_from(timeout=TIMEOUT))["code"] == "not_found"
        await move(theirs, S.PENDING, S.QUEUED)
        mine = await submit(user)  # not subscribed either: the failed query subscribed nothing
        await move(mine, S.PENDING, S.QUEUED)
        assert await comm.receive_nothing(timeout=0.5)
        await comm.disconnect()

    run(scenario)


def test_subscribe_and_unsubscribe_messages_change_what_is_sent(user):
    async def scenario() -> None:
        first, second = await submit(user), await submit(user)
        comm = await connect(f"?token={await token_for(user)}&job={first.id}")
        assert (await comm.receive_json_from(timeout=TIMEOUT))["type"] == "subscribed"
        await comm.send_json_to({"action": "subscribe", "job": str(second.id)})
        assert (await comm.receive_json_from(timeout=TIMEOUT))["job"] == str(second.id)
        await comm.send_json_to({"action": "unsubscribe", "job": str(first.id)})
        assert (await comm.receive_json_from(timeout=TIMEOUT))["type"] == "unsubscribed"
        await move(first, S.PENDING, S.QUEUED)
        await move(second, S.PENDING, S.QUEUED)
        assert seen(await updates_until(comm, second, S.QUEUED)) == [(str(second.id), S.QUEUED)]
        await comm.send_json_to("not an action")
        assert (await comm.receive_json_from(timeout=TIMEOUT))["code"] == "bad_request"
        await comm.send_to(text_data="{not json")
        assert (await comm.receive_json_from(timeout=TIMEOUT))["code"] == "bad_request"
        await comm.disconnect()

    run(scenario)


# --- Staff ----------------------------------------------------------------------------------


def test_staff_with_scope_all_see_every_users_jobs(user, other_user, staff_user):
    async def scenario() -> None:
        comm = await subscribed(staff_user, "?scope=all")
        a, b = await submit(user), await submit(other_user)
        await move(a, S.PENDING, S.QUEUED)
        await move(b, S.PENDING, S.QUEUED)
        messages = await updates_until(comm, b, S.QUEUED)
        assert seen(messages) == [
            (str(a.id), S.PENDING),
            (str(b.id), S.PENDING),
            (str(a.id), S.QUEUED),
            (str(b.id), S.QUEUED),
        ]
        await comm.disconnect()

    run(scenario)


def test_an_on_call_viewer_with_scope_all_follows_every_users_jobs(user, viewer_user):
    """The viewer sees every job's page, so its live updates too (the job page's socket)."""

    async def scenario() -> None:
        comm = await subscribed(viewer_user, "?scope=all")
        theirs = await submit(user)
        await move(theirs, S.PENDING, S.QUEUED)
        messages = await updates_until(comm, theirs, S.QUEUED)
        assert seen(messages) == [(str(theirs.id), S.PENDING), (str(theirs.id), S.QUEUED)]
        await comm.disconnect()

    run(scenario)


def test_staff_without_scope_all_see_only_their_own_jobs(user, staff_user):
    async def scenario() -> None:
        comm = await subscribed(staff_user)
        await submit(user)
        mine = await submit(staff_user)
        assert seen(await updates_until(comm, mine, S.PENDING)) == [(str(mine.id), S.PENDING)]
        await comm.disconnect()

    run(scenario)


def test_scope_all_is_refused_with_4403_for_non_staff(user):
    async def scenario() -> None:
        comm = await connect(f"?scope=all&token={await token_for(user)}")
        error = await comm.receive_json_from(timeout=TIMEOUT)
        assert error["type"] == "error" and error["code"] == 4403
        assert await closed_with(comm) == 4403

    run(scenario)


# --- Resume -----------------------------------------------------------------------------------


def test_a_reconnect_with_since_replays_the_missed_changes_in_order_then_live_ones(user):
    async def scenario() -> None:
        job = await submit(user)
        comm = await subscribed(user, f"?job={job.id}")
        await move(job, S.PENDING, S.QUEUED)
        cursor = (await updates_until(comm, job, S.QUEUED))[-1]["cursor"]
        await comm.disconnect()

        await move(job, S.QUEUED, S.RUNNING)  # missed while disconnected
        other = await submit(user)  # someone else's subscription: not replayed here
        await move(job, S.RUNNING, S.COMPLETED)

        comm = await subscribed(user, f"?job={job.id}&since={cursor}")
        replayed = [await comm.receive_json_from(timeout=TIMEOUT) for _ in range(3)]
        assert seen(replayed[:2]) == [(str(job.id), S.RUNNING), (str(job.id), S.COMPLETED)]
        assert all(m["replay"] for m in replayed[:2])
        assert replayed[0]["cursor"] > cursor and replayed[1]["cursor"] > replayed[0]["cursor"]
        assert replayed[2] == {"type": "replay_done", "count": 2, "cursor": replayed[1]["cursor"]}
        # A late live copy of a replayed change (published after the replay read it) is dropped.
        await database_sync_to_async(events.broadcast)([await last_change(job)])
        assert await comm.receive_nothing(timeout=0.5)
        assert other.id != job.id
        await comm.disconnect()

    run(scenario)


def test_since_replays_all_own_jobs_without_duplicating_live_events(user, other_user):
    async def scenario() -> None:
        first = await submit(user)
        await submit(other_user)
        cursor = (await last_change(first)).log_id
        await move(first, S.PENDING, S.QUEUED)
        second = await submit(user)
        comm = await subscribed(user, f"?since={cursor}")
        await move(second, S.PENDING, S.QUEUED)
        messages = await updates_until(comm, second, S.QUEUED)
        assert seen(messages) == [
            (str(first.id), S.QUEUED),
            (str(second.id), S.PENDING),
            (str(second.id), S.QUEUED),
        ]
        assert messages[2]["type"] == "replay_done"
        cursors = [m["cursor"] for m in messages if m["type"] == "job_update"]
        assert cursors == sorted(set(cursors))
        assert await comm.receive_nothing(timeout=0.5)
        await comm.disconnect()

    run(scenario)


def test_a_subscribe_message_with_since_replays_that_job(user):
    async def scenario() -> None:
        job = await submit(user)
        await move(job, S.PENDING, S.QUEUED)
        comm = await connect(f"?token={await token_for(user)}")
        assert (await comm.receive_json_from(timeout=TIMEOUT))["type"] == "subscribed"
        await comm.send_json_to({"action": "subscribe", "job": str(job.id), "since": 0})
        ack = await comm.receive_json_from(timeout=TIMEOUT)
        assert ack["type"] == "subscribed" and ack["since"] == 0
        messages = await updates_until(comm, job, S.QUEUED)
        assert seen(messages) == [(str(job.id), S.PENDING), (str(job.id), S.QUEUED)]
        await comm.disconnect()

    run(scenario)


def test_a_replay_longer_than_the_limit_stops_and_says_where_to_page_from(user, monkeypatch):
    monkeypatch.setattr(consumers, "REPLAY_LIMIT", 2)

    async def scenario() -> None:
        jobs = [await submit(user) for _ in range(3)]
        comm = await subscribed(user, "?since=0")
        replayed = [await comm.receive_json_from(timeout=TIMEOUT) for _ in range(3)]
        assert seen(replayed[:2]) == [(str(jobs[0].id), S.PENDING), (str(jobs[1].id), S.PENDING)]
        assert replayed[2]["type"] == "replay_truncated"
        assert replayed[2]["cursor"] == replayed[1]["cursor"]
        assert f"logs?since={replayed[1]['cursor']}" in replayed[2]["detail"]
        await comm.disconnect()

    run(scenario)


def test_a_bad_since_is_an_error(user):
    async def scenario() -> None:
        comm = await connect(f"?since=-3&token={await token_for(user)}")
        assert (await comm.receive_json_from(timeout=TIMEOUT))["code"] == "bad_request"
        await comm.disconnect()

    run(scenario)
