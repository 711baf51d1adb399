"""The Python client (``sdk/``, ``draconic_sdk``) against a live platform: daphne, a worker
and a scheduler (``tests.e2e.sdk_live``). The client reaches it over HTTP and WebSocket
only; the database is read here just to check what the server stored."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from draconic_sdk import (
    AsyncClient,
    AuthenticationError,
    Client,
    Conflict,
    Graph,
    Job,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerUnavailable,
    ValidationError,
)
from jobs.models import ExecutionLog
from jobs.models import Job as JobRow
from tests.e2e import sdk_live
from tests.e2e.sdk_live import Live, start_live
from tests.harness import free_port, wait_until

pytestmark = pytest.mark.e2e
live = sdk_live.live  # the fixture

TIMEOUT = 120  # a hang guard for a broken platform, not a performance assertion


def test_submit_get_list_logs_and_cancel_work_against_the_platform(live: Live) -> None:
    with Client(live.url, live.token) as client:
        job = client.submit("noop", {"seconds": 0.1}, priority="high", cpu_units=2, memory_mb=64)
        assert isinstance(job, Job) and job.status == "pending" and job.priority == "high"
        assert job.resource_requirements.cpu_units == 2 and job.idempotency_key
        done = client.wait(job, timeout=TIMEOUT)
        assert done.status == "completed" and done.result == {"ok": True, "slept": 0.1}
        assert client.get(job.id) == done

        others = [client.submit("noop", priority="low") for _ in range(4)]
        every = list(client.list(page_size=2))  # three pages
        assert {j.id for j in every} == {job.id, *(o.id for o in others)}
        assert [j.id for j in client.list(priority="high")] == [job.id]
        assert job.id in [j.id for j in client.list(status="completed", type="noop")]
        assert list(client.list(type="data_export")) == []
        assert len(list(client.list(limit=3))) == 3

        lines = client.logs(job)
        assert [line.to_status for line in lines] == ["pending", "queued", "running", "completed"]
        assert client.logs(job, since=lines[1].id) == lines[2:]

        slow = client.submit("noop", {"seconds": 60}, priority="low")
        child = client.submit("noop", depends_on=[slow])
        other_parent = client.submit("noop", {"seconds": 60}, priority="low")
        added = client.dependencies.add(child, [other_parent])
        assert set(added.depends_on) == {slow.id, other_parent.id}
        for parent in (slow, other_parent):
            client.cancel(parent)
        ended = client.wait([slow, other_parent, child], timeout=TIMEOUT)
        assert [j.status for j in ended] == ["cancelled", "cancelled", "cancelled"]


def test_a_graph_is_stored_at_once_and_its_jobs_come_back_by_key(live: Live) -> None:
    graph = Graph()
    stats = graph.add("data_processing", {"data": [3, 1, 4, 1, 5]}, key="stats")
    graph.add("report_generation", {"title": "Daily"}, key="report", depends_on=[stats])
    with Client(live.url, live.token) as client:
        result = client.submit_graph(graph)
        assert set(result.jobs) == {"stats", "report"}
        assert result.jobs["report"].depends_on == [result.jobs["stats"].id]
        report, first = client.wait([result.jobs["report"], result.jobs["stats"]], timeout=TIMEOUT)
        assert (report.status, first.status) == ("completed", "completed")
        assert report.batch_id == result.batch_id == first.batch_id
        assert "Daily" in json.dumps(report.result)


def test_wait_follows_100_jobs_to_their_end(live: Live) -> None:
    graph = Graph()
    for _ in range(100):
        graph.add("noop")
    with Client(live.url, live.token) as client:
        jobs = client.submit_graph(graph).all_jobs
        final = client.wait(jobs, timeout=300)
    assert [j.id for j in final] == [j.id for j in jobs]
    assert {j.status for j in final} == {"completed"}


def test_wait_polls_when_the_server_has_no_websocket(
    platform: Any, user: Any, staff_user: Any
) -> None:
    """gunicorn serves REST but no WebSocket (as the compose file's ``api`` does)."""
    live = start_live(platform, user, staff_user)
    port = free_port()
    argv = ["-m", "gunicorn", "-b", f"127.0.0.1:{port}", "draconic.wsgi:application"]
    platform.start("gunicorn", [sys.executable, *argv])
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _serves(url), timeout=TIMEOUT, interval=0.3, message="gunicorn")
    with Client(url, live.token) as client:
        job = client.submit("noop")
        assert client.wait(job, timeout=TIMEOUT).status == "completed"
        with pytest.raises(InvalidStatus):  # the fallback really was needed
            client._connect(client.settings.ws_url).close()


def _serves(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_stream_resumes_after_the_server_is_killed_with_nothing_lost_or_repeated(
    live: Live,
) -> None:
    graph = Graph()
    previous: str | None = None
    for _ in range(12):  # a chain: one job after the other, for several seconds
        previous = graph.add("noop", {"seconds": 0.3}, depends_on=[previous] if previous else [])
    client = Client(live.url, live.token)
    batch = client.submit_graph(graph)
    ids = {j.id for j in batch.all_jobs}
    received: list[Any] = []
    failure: list[BaseException] = []

    def consume() -> None:
        try:
            for event in client.stream(batch=batch.batch_id, since=0, reconnect_for=TIMEOUT):
                received.append(event)
                if {e.job_id for e in received if e.status == "completed"} == ids:
                    return
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    wait_until(lambda: len(received) >= 5, timeout=TIMEOUT, message="first events")
    live.platform.kill("web")
    logged_before = _logged(batch.batch_id)
    wait_until(lambda: _logged(batch.batch_id) > logged_before + 2, timeout=TIMEOUT)
    at_kill = len(received)
    live.platform.restart("web")
    reader.join(timeout=TIMEOUT)
    assert not reader.is_alive() and not failure, failure
    client.close()

    cursors = [e.cursor for e in received]
    assert len(cursors) == len(set(cursors)), "an event was repeated"
    expected = set(
        ExecutionLog.objects.filter(job__batch_id=batch.batch_id)
        .exclude(to_status="")
        .values_list("id", flat=True)
    )
    assert set(cursors) == expected, "an event was lost"
    # Not vacuous: events logged while the server was down came after it, replayed.
    assert any(e.replay for e in received[at_kill:])


def _logged(batch_id: str) -> int:
    return ExecutionLog.objects.filter(job__batch_id=batch_id).exclude(to_status="").count()


class LoseFirstAnswer(httpx.BaseTransport):
    """Sends every request to the real server, and loses the answer to the first submit:
    the connection drops after the server has stored the job (a flaky network)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.submits: list[dict[str, Any]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path == "/jobs/":
            self.submits.append(json.loads(request.content))
            if len(self.submits) == 1:
                response.read()
                raise httpx.ReadError("connection reset by peer", request=request)
        return response


def test_a_submit_retried_after_a_lost_answer_creates_one_job(live: Live) -> None:
    flaky = LoseFirstAnswer()
    with Client(live.url, live.token, transport=flaky) as client:
        job = client.submit("noop", {"n": 1})
    assert len(flaky.submits) == 2
    assert flaky.submits[0]["idempotency_key"] == flaky.submits[1]["idempotency_key"]
    assert list(JobRow.objects.values_list("id", flat=True)) == [uuid.UUID(job.id)]


def test_each_failure_is_its_own_typed_error(live: Live) -> None:
    with Client(live.url, live.token) as client:
        with pytest.raises(ValidationError) as invalid:
            client.submit("noop", priority="urgent")
        assert "priority" in invalid.value.errors
        with pytest.raises(ValidationError) as unknown:
            client.submit("noop", extra={"prioritty": "low"})
        assert "prioritty" in unknown.value.errors
        with pytest.raises(NotFound):
            client.get(str(uuid.uuid4()))
        done = client.wait(client.submit("noop"), timeout=TIMEOUT)
        with pytest.raises(Conflict):
            client.cancel(done)
        client.submit("noop", idempotency_key="order-42")
        with pytest.raises(Conflict) as reused:
            client.submit("noop", priority="low", idempotency_key="order-42")
        assert reused.value.job_id
        with pytest.raises(PermissionDenied):
            client.health()
    with Client(live.url, "not-a-token") as client, pytest.raises(AuthenticationError) as auth:
        client.get(str(uuid.uuid4()))
    assert "createapitoken" in str(auth.value)
    with Client(live.url, None) as client, pytest.raises(AuthenticationError):
        list(client.list())
    down = f"http://127.0.0.1:{free_port()}"
    with Client(down, live.token, retries=0) as client, pytest.raises(ServerUnavailable) as off:
        client.get(str(uuid.uuid4()))
    assert off.value.url == down and down in str(off.value)


def test_the_operator_calls_health_metrics_and_the_dead_letter_queue(live: Live) -> None:
    with Client(live.url, live.staff_token) as client:
        assert client.healthz() == {"status": "ok"}
        wait_until(lambda: client.health().ok, timeout=TIMEOUT, message="healthy")
        assert "postgres" in client.health().checks
        assert client.metrics()
        failed = [client.submit("fail", {"permanent": True}) for _ in range(3)]
        assert {j.status for j in client.wait(failed, timeout=TIMEOUT)} == {"failed"}
        letters = list(client.dlq.list(reason="non_retryable", page_size=2))
        assert {d.job.id for d in letters} == {j.id for j in failed}
        assert client.dlq.retry_all(type="fail", dry_run=True).would_requeue == 3
        requeued = client.dlq.retry(failed[0], descendants=False)
        assert (requeued.job_id, requeued.status) == (failed[0].id, "pending")
        # The requeued job fails again (its payload is permanent), so wait for it to be
        # back in the queue: the bulk call then finds all three, not a race-dependent two.
        assert client.wait(failed[0], timeout=TIMEOUT).status == "failed"
        bulk = client.dlq.retry_all(reason="non_retryable")
        assert bulk.requeued == 3 and bulk.would_requeue is None
        with pytest.raises(NotFound):
            client.dlq.retry(str(uuid.uuid4()))

        export = client.submit(
            "data_export", {"format": "csv", "rows": [{"a": 1}], "filename": "n"}
        )
        client.wait(export, timeout=TIMEOUT)
        assert client.export(export).decode().splitlines() == ["a", "1"]


def test_the_async_client_submits_waits_streams_and_raises_typed_errors(live: Live) -> None:
    async def scenario() -> None:
        async with AsyncClient(live.url, live.token) as client:
            job = await client.submit("noop", {"seconds": 0.1})
            graph = Graph()
            graph.add("noop", key="a")
            batch = await client.submit_graph(graph)
            final = await client.wait([job, batch.jobs["a"]], timeout=TIMEOUT)
            assert [j.status for j in final] == ["completed", "completed"]
            statuses = []
            async for event in client.stream(job=job, since=0):
                statuses.append(event.status)
                if event.status == "completed":
                    break
            assert statuses == ["pending", "queued", "running", "completed"]
            assert [j.id async for j in client.list(page_size=1)] == [batch.jobs["a"].id, job.id]
            assert [line.to_status for line in await client.logs(job)][-1] == "completed"
            assert (await client.get(job.id)).status == "completed"
            with pytest.raises(Conflict):
                await client.cancel(job)
            with pytest.raises(NotFound):
                async for _ in client.stream(job=str(uuid.uuid4())):
                    pass

    asyncio.run(scenario())


def test_a_rate_limited_call_is_retried_after_the_servers_retry_after(
    platform: Any, user: Any, staff_user: Any
) -> None:
    live = start_live(platform, user, staff_user, worker=False)
    url = platform.start_web("strict-web", DRACONIC_THROTTLE_USER="4/s")
    job = Client(live.url, live.token).submit("noop")
    with Client(url, live.token, retries=0) as client:
        with pytest.raises(RateLimited) as limited:
            for _ in range(200):  # a fixed window of 4 a second: soon refused
                client.get(job)
        assert 0 < limited.value.retry_after <= 1
    with Client(url, live.token, retries=5) as client:
        assert all(client.get(job).id == job.id for _ in range(20))


def test_schedules_fire_trigger_pause_update_and_delete(live: Live) -> None:
    template = {"type": "noop", "payload": {"seconds": 0.1}}
    with Client(live.url, live.token) as client:
        every = client.schedules.create("sdk-every-second", template, interval_seconds=1)
        assert (every.interval_seconds, every.cron, every.paused) == (1, None, False)
        assert len(every.next_fire_times) >= 2 and every.job == template

        def fired() -> list[Job]:
            return [j for j in client.list(type="noop") if j.schedule == every.id]

        wait_until(lambda: fired(), timeout=TIMEOUT, message="the scheduler fired it")
        assert fired()[0].scheduled_for is not None
        paused = client.schedules.pause(every)
        assert paused.paused and paused.next_fire_times == []
        job = client.schedules.trigger(every)  # a trigger fires a paused schedule too
        assert job.schedule == every.id
        assert client.wait(job, timeout=TIMEOUT).status == "completed"
        runs = client.schedules.get(every.id).last_runs
        assert (runs[0].manual, runs[0].job_id, runs[0].job_status) == (True, job.id, "completed")
        assert not client.schedules.resume(every).paused
        nightly = client.schedules.update(
            every, name="nightly", cron="0 3 * * *", interval_seconds=None, timezone="Asia/Tokyo"
        )
        assert (nightly.name, nightly.cron, nightly.interval_seconds) == (
            "nightly",
            "0 3 * * *",
            None,
        )
        assert [s.id for s in client.schedules.list(page_size=1)] == [every.id]
        client.schedules.delete(every)
        with pytest.raises(NotFound):
            client.schedules.get(every.id)
        with pytest.raises(ValidationError) as neither:
            client.schedules.create("no-times", template)
        assert "cron" in neither.value.errors


def test_limits_are_managed_by_staff_and_jobs_show_their_key_and_due_time(live: Live) -> None:
    with Client(live.url, live.staff_token) as staff:
        rule = staff.limits.create("tenant:*", max_concurrency=2)
        assert (rule.key, rule.max_concurrency, rule.rate) == ("tenant:*", 2, None)
        assert [r.id for r in staff.limits.list()] == [rule.id]
        changed = staff.limits.update(rule, rate="10/s", max_concurrency=None)
        assert (changed.max_concurrency, changed.rate) == (None, "10/s")
        assert staff.limits.get(rule.id).rate == "10/s"
        assert staff.limits.find("tenant:*") == staff.limits.get(rule)
        with pytest.raises(ValidationError) as twice:
            staff.limits.create("tenant:*", max_concurrency=1)
        assert "key" in twice.value.errors
    with Client(live.url, live.token) as client:
        with pytest.raises(PermissionDenied):
            client.limits.list()
        later = client.submit("noop", delay_seconds=3600, concurrency_key="tenant:7")
        assert later.concurrency_key == "tenant:7" and later.run_at is not None
        waiting = client.get(later).waiting_on or []
        assert [w["reason"] for w in waiting] == ["run_at"]  # a list does not show it:
        assert next(client.list(scheduled=True)).waiting_on is None
        now = client.submit("noop", {"seconds": 0.1}, concurrency_key="tenant:7")
        assert client.wait(now, timeout=TIMEOUT).status == "completed"
        assert [j.id for j in client.list(scheduled=True)] == [later.id]
        assert later.id not in {j.id for j in client.list(scheduled=False)}
        client.cancel(later)
        due = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
        graph = Graph()
        graph.add("noop", key="due", run_at=due, concurrency_key="tenant:8")
        held = client.submit_graph(graph).jobs["due"]
        assert (held.run_at, held.concurrency_key) == (due, "tenant:8")
        client.cancel(held)
    with Client(live.url, live.staff_token) as staff:
        staff.limits.delete(rule)
        assert staff.limits.list() == []


def test_the_async_client_has_schedules_and_limits(live: Live) -> None:
    # Hourly, at the minute half an hour from now: it cannot fire by itself during the test
    # (a fire of "0 * * * *" at the top of an hour would be last_runs[0], not the trigger).
    minute = (datetime.now(UTC) + timedelta(minutes=30)).minute
    hourly = f"{minute} * * * *"

    async def scenario() -> None:
        async with AsyncClient(live.url, live.staff_token) as client:
            made = await client.schedules.create(
                "async-hourly", {"type": "noop"}, cron=hourly, timezone="UTC"
            )
            job = await client.schedules.trigger(made)
            assert (await client.wait(job, timeout=TIMEOUT)).schedule == made.id
            assert [s.id async for s in client.schedules.list()] == [made.id]
            assert (await client.schedules.pause(made)).paused
            assert not (await client.schedules.resume(made)).paused
            assert (await client.schedules.update(made, catchup="none")).catchup == "none"
            assert (await client.schedules.get(made.id)).last_runs[0].job_id == job.id
            await client.schedules.delete(made)
            rule = await client.limits.create("type:noop", rate="600/m")
            assert (await client.limits.update(rule, max_concurrency=4)).max_concurrency == 4
            assert [r.key for r in await client.limits.list()] == ["type:noop"]
            assert (await client.limits.get(rule.id)).rate == "600/m"
            assert await client.limits.find("type:noop") is not None
            await client.limits.delete(rule)
            with pytest.raises(NotFound):
                await client.limits.get(rule.id)

    asyncio.run(scenario())
