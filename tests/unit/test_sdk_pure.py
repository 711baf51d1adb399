"""The SDK's pure parts, no server: how answers become values or typed errors, when a call
is repeated, how the feed resumes and dedupes, the graph builder, and that the package
imports nothing of the server's."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from draconic_sdk import calls, errors, feed
from draconic_sdk.calls import Page
from draconic_sdk.config import HOW_TO_AUTHENTICATE, settings
from draconic_sdk.graph import Graph, JobOptions
from draconic_sdk.models import Job
from draconic_sdk.namespaces import pages as _pages
from draconic_sdk.transport import read_answer, retry_delay
from tests.harness import ROOT

JOB = {"id": "j1", "type": "noop", "priority": "normal", "status": "completed"}


def _answer(call: calls.Call[Any], status: int, body: bytes, retry_after: str | None = None) -> Any:
    return read_answer(
        call,
        status=status,
        content=body,
        content_type="application/json",
        url="http://h/jobs/x",
        retry_after=retry_after,
    )


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, errors.ValidationError),
        (401, errors.AuthenticationError),
        (403, errors.PermissionDenied),
        (404, errors.NotFound),
        (409, errors.Conflict),
        (429, errors.RateLimited),
        (503, errors.ServerUnavailable),
        (500, errors.DraconicError),
    ],
)
def test_each_error_status_is_its_own_error(status: int, kind: type[Exception]) -> None:
    with pytest.raises(kind) as raised:
        _answer(calls.get("x"), status, b'{"detail": "no"}', retry_after="7")
    assert type(raised.value) is kind


def test_a_validation_error_keeps_the_field_errors_and_a_conflict_its_job() -> None:
    with pytest.raises(errors.ValidationError) as invalid:
        _answer(calls.get("x"), 400, b'{"priority": ["\\"urgent\\" is not a valid choice"]}')
    assert invalid.value.errors == {"priority": ['"urgent" is not a valid choice']}
    assert "priority" in str(invalid.value)
    with pytest.raises(errors.Conflict) as conflict:
        _answer(calls.get("x"), 409, b'{"idempotency_key": ["used"], "job_id": "j0"}')
    assert conflict.value.job_id == "j0"


def test_rate_limited_carries_retry_after_and_no_token_says_how_to_get_one() -> None:
    with pytest.raises(errors.RateLimited) as limited:
        _answer(calls.get("x"), 429, b'{"detail": "slow down"}', retry_after="3")
    assert limited.value.retry_after == 3.0
    with pytest.raises(errors.AuthenticationError) as auth:
        _answer(calls.get("x"), 401, b'{"detail": "no credentials"}')
    assert HOW_TO_AUTHENTICATE in str(auth.value)


def test_a_health_report_of_503_is_an_answer_not_an_error() -> None:
    report = _answer(calls.health(), 503, b'{"status": "unavailable", "failing": ["workers"]}')
    assert not report.ok and report.failing == ["workers"]


def test_only_idempotent_calls_are_repeated_and_retry_after_is_honoured() -> None:
    conf = settings("http://h", "t", retries=2, max_retry_wait=10)
    limited = errors.RateLimited("x", retry_after=4)
    down = errors.ServerUnavailable("x", url="http://h")
    assert retry_delay(calls.get("j"), limited, 0, conf) == 4
    assert retry_delay(calls.get("j"), errors.RateLimited("x", retry_after=99), 0, conf) == 10
    assert retry_delay(calls.submit("noop"), down, 1, conf) is not None
    assert retry_delay(calls.get("j"), down, 2, conf) is None  # retries spent
    assert retry_delay(calls.cancel("j"), limited, 0, conf) is None
    assert retry_delay(calls.submit_graph(Graph()), down, 0, conf) is None
    assert retry_delay(calls.get("j"), errors.NotFound("x"), 0, conf) is None
    assert retry_delay(calls.dlq_retry_bulk(all=True, dry_run=True), down, 0, conf) is not None
    assert retry_delay(calls.dlq_retry_bulk(all=True), down, 0, conf) is None


def test_a_submit_carries_one_generated_idempotency_key_or_the_callers() -> None:
    first, second = calls.submit("noop"), calls.submit("noop")
    assert first.json["idempotency_key"] != second.json["idempotency_key"]
    assert calls.submit("noop", idempotency_key="k").json["idempotency_key"] == "k"
    options = JobOptions(cpu_units=2, run_at=datetime(2030, 1, 1, tzinfo=UTC))
    body = calls.submit("noop", {"a": 1}, options=options, depends_on=[Job.from_json(JOB)]).json
    assert body["run_at"] == "2030-01-01T00:00:00+00:00"
    assert body["resource_requirements"] == {"cpu_units": 2} and body["depends_on"] == ["j1"]
    assert "priority" not in body  # the type's default


def _event(cursor: int, status: str = "running") -> dict[str, Any]:
    return {"type": "job_update", "job_id": "j", "status": status, "cursor": cursor}


def test_the_feed_never_yields_a_cursor_twice_and_resumes_behind_the_highest() -> None:
    state = feed.FeedState(batch="b", since=5)
    assert state.resume_since() == 5
    got = [state.accept(_event(c)) for c in (7, 6, 7, 9)]
    assert [e.cursor if e else None for e in got] == [7, 6, None, 9]
    assert state.resume_since() == 5  # floor: the caller's since
    state.accept(_event(5000))
    assert state.resume_since() == 5000 - feed.REWIND
    assert state.accept({"type": "replay_done", "count": 3}) is None
    assert "batch=b" in state.url("ws://h/jobs/stream", None)


def test_a_live_only_feed_starts_without_since_and_pages_on_after_a_truncated_replay() -> None:
    state = feed.FeedState()
    assert state.resume_since() is None and "since" not in state.url("ws://h/s", None)
    state.accept({"type": "replay_truncated", "cursor": 10})
    assert state.must_reconnect


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (4401, errors.AuthenticationError),
        (4403, errors.PermissionDenied),
        ("not_found", errors.NotFound),
    ],
)
def test_a_feed_error_message_is_a_typed_error(code: Any, kind: type[Exception]) -> None:
    with pytest.raises(kind):
        feed.FeedState().accept({"type": "error", "code": code, "detail": "no"})


def test_pages_are_walked_to_the_end_each_item_once() -> None:
    pages = {1: Page([1, 2], 4, True), 2: Page([2, 3], 4, True), 3: Page([4], 4, False)}
    assert list(_pages(pages.__getitem__, key=lambda x: x)) == [1, 2, 3, 4]
    assert list(_pages(pages.__getitem__, key=lambda x: x, limit=3)) == [1, 2, 3]


def test_the_graph_builder_names_nodes_and_refuses_a_repeated_key() -> None:
    graph = Graph()
    a = graph.add("data_processing", {"data": [1]})
    b = graph.add("report_generation", depends_on=[a], priority="high", key="report")
    assert (a, b) == ("data_processing-1", "report")
    assert graph.to_json()["jobs"][1] == {
        "key": "report",
        "type": "report_generation",
        "payload": {},
        "depends_on": ["data_processing-1"],
        "priority": "high",
    }
    with pytest.raises(ValueError, match="already"):
        graph.add("noop", key="report")
    assert Graph.from_json(graph.to_json()).to_json() == graph.to_json()


def test_the_websocket_url_follows_the_http_url() -> None:
    assert settings("https://d.example/").ws_url == "wss://d.example/jobs/stream"
    assert settings("http://127.0.0.1:8000").ws_url == "ws://127.0.0.1:8000/jobs/stream"
    with pytest.raises(ValueError, match="DRACONIC_URL"):
        settings("127.0.0.1:8000")


def test_the_sdk_imports_nothing_of_the_server() -> None:
    probe = (
        "import sys, draconic_sdk, draconic_sdk.cli; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('django', 'celery', 'rest_framework', 'channels', 'jobs', 'workers', 'draconic')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = {"PYTHONPATH": str(ROOT / "sdk" / "src"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT / "sdk",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
