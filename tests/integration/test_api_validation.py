"""Every validation rule of the jobs API: a 400 whose JSON body names the bad field, and
nothing stored (Job, JobDependency, ExecutionLog and DeadLetter rows counted before and
after). Also hostile input: no request may produce a 500."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from jobs.api.errors import nest_errors
from jobs.engine.deadletter import job_dead_letter_waiting
from jobs.models import DeadLetter, DeadLetterReason, ExecutionLog, Job, JobDependency, JobStatus
from tests.factories import move_to

pytestmark = pytest.mark.django_db

S = JobStatus
Path = tuple[str, ...]


def row_counts() -> tuple[int, ...]:
    return tuple(m.objects.count() for m in (Job, JobDependency, ExecutionLog, DeadLetter))


@pytest.fixture
def nothing_stored() -> Iterator[None]:
    """Fails the test if any job, edge, log line or dead letter was written inside it."""
    before = row_counts()
    yield
    assert row_counts() == before, "a refused request stored something"


def assert_names(body: Any, path: Path) -> None:
    """``body`` holds a non-empty list of messages at ``path`` (DRF's nested error shape)."""
    node = body
    for key in path:
        assert isinstance(node, dict) and key in node, f"no {'.'.join(path)} in {body}"
        node = node[key]
    # A list of messages; or, for a nested serializer or list, messages by sub-field or index.
    assert isinstance(node, (list, dict)) and node, f"no messages at {'.'.join(path)} in {body}"
    assert all(
        isinstance(m, (str, dict, list))
        for m in (node if isinstance(node, list) else node.values())
    )


def new_id() -> str:
    return str(uuid.uuid4())


def nested(depth: int) -> dict[str, Any]:
    """An object ``depth`` levels deep: ``{"a": {"a": ... {}}}``."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


SAME = new_id()
JOB = {"type": "noop"}
RR = "resource_requirements"

# (case id, body, the path of the field the 400 must name)
INVALID_JOBS: list[tuple[str, dict[str, Any], Path]] = [
    ("type missing", {}, ("type",)),
    ("type unknown", {"type": "no_such_type"}, ("type",)),
    ("type unicode", {"type": "nøöp ✓"}, ("type",)),
    ("type too long", {"type": "x" * 256}, ("type",)),
    ("type a number", {"type": 5}, ("type",)),
    ("type a list", {"type": ["noop"]}, ("type",)),
    ("type null", {"type": None}, ("type",)),
    ("type blank", {"type": ""}, ("type",)),
    ("priority unknown", {**JOB, "priority": "urgent"}, ("priority",)),
    ("priority upper case", {**JOB, "priority": "HIGH"}, ("priority",)),
    ("priority a rank", {**JOB, "priority": 0}, ("priority",)),
    ("priority null", {**JOB, "priority": None}, ("priority",)),
    ("payload a list", {**JOB, "payload": [1, 2]}, ("payload",)),
    ("payload a string", {**JOB, "payload": "{}"}, ("payload",)),
    ("payload a number", {**JOB, "payload": 5}, ("payload",)),
    ("payload null", {**JOB, "payload": None}, ("payload",)),
    ("payload over 64 KiB", {**JOB, "payload": {"blob": "x" * 65536}}, ("payload",)),
    ("payload nested 33 deep", {**JOB, "payload": nested(33)}, ("payload",)),
    ("payload with NUL", {**JOB, "payload": {"a": "nul\u0000here"}}, ("payload",)),
    ("payload key with NUL", {**JOB, "payload": {"k\u0000": 1}}, ("payload",)),
    ("payload refused by the handler", {**JOB, "payload": {"seconds": -1}}, ("payload",)),
    ("cpu_units zero", {**JOB, RR: {"cpu_units": 0}}, (RR, "cpu_units")),
    ("cpu_units negative", {**JOB, RR: {"cpu_units": -1}}, (RR, "cpu_units")),
    ("cpu_units fractional", {**JOB, RR: {"cpu_units": 2.5}}, (RR, "cpu_units")),
    ("cpu_units a string", {**JOB, RR: {"cpu_units": "2"}}, (RR, "cpu_units")),
    ("cpu_units a word", {**JOB, RR: {"cpu_units": "two"}}, (RR, "cpu_units")),
    ("cpu_units a boolean", {**JOB, RR: {"cpu_units": True}}, (RR, "cpu_units")),
    ("cpu_units null", {**JOB, RR: {"cpu_units": None}}, (RR, "cpu_units")),
    ("cpu_units over capacity", {**JOB, RR: {"cpu_units": 9}}, (RR, "cpu_units")),
    ("cpu_units 10**30", {**JOB, RR: {"cpu_units": 10**30}}, (RR, "cpu_units")),
    ("cpu_units -10**30", {**JOB, RR: {"cpu_units": -(10**30)}}, (RR, "cpu_units")),
    ("memory_mb zero", {**JOB, RR: {"memory_mb": 0}}, (RR, "memory_mb")),
    ("memory_mb negative", {**JOB, RR: {"memory_mb": -512}}, (RR, "memory_mb")),
    ("memory_mb fractional", {**JOB, RR: {"memory_mb": 0.5}}, (RR, "memory_mb")),
    ("memory_mb a string", {**JOB, RR: {"memory_mb": "512"}}, (RR, "memory_mb")),
    ("memory_mb over capacity", {**JOB, RR: {"memory_mb": 4097}}, (RR, "memory_mb")),
    ("memory_mb 10**30", {**JOB, RR: {"memory_mb": 10**30}}, (RR, "memory_mb")),
    ("resources unknown field", {**JOB, RR: {"gpus": 1}}, (RR, "gpus")),
    ("resources a list", {**JOB, RR: [1, 128]}, (RR,)),
    ("resources a number", {**JOB, RR: 4}, (RR,)),
    ("resources null", {**JOB, RR: None}, (RR,)),
    ("depends_on a string", {**JOB, "depends_on": SAME}, ("depends_on",)),
    ("depends_on an object", {**JOB, "depends_on": {"id": SAME}}, ("depends_on",)),
    ("depends_on null", {**JOB, "depends_on": None}, ("depends_on",)),
    ("depends_on non-UUID", {**JOB, "depends_on": ["not-a-uuid"]}, ("depends_on",)),
    ("depends_on a nested list", {**JOB, "depends_on": [[SAME]]}, ("depends_on",)),
    ("depends_on duplicates", {**JOB, "depends_on": [SAME, SAME]}, ("depends_on",)),
    ("depends_on over 100", {**JOB, "depends_on": [new_id() for _ in range(101)]}, ("depends_on",)),
    ("depends_on unknown id", {**JOB, "depends_on": [new_id()]}, ("depends_on",)),
    ("max_attempts zero", {**JOB, "max_attempts": 0}, ("max_attempts",)),
    ("max_attempts 21", {**JOB, "max_attempts": 21}, ("max_attempts",)),
    ("max_attempts negative", {**JOB, "max_attempts": -3}, ("max_attempts",)),
    ("max_attempts a string", {**JOB, "max_attempts": "3"}, ("max_attempts",)),
    ("max_attempts fractional", {**JOB, "max_attempts": 2.5}, ("max_attempts",)),
    ("max_attempts null", {**JOB, "max_attempts": None}, ("max_attempts",)),
    ("max_attempts 10**30", {**JOB, "max_attempts": 10**30}, ("max_attempts",)),
    ("timeout zero", {**JOB, "timeout_seconds": 0}, ("timeout_seconds",)),
    ("timeout over a day", {**JOB, "timeout_seconds": 86401}, ("timeout_seconds",)),
    ("timeout a string", {**JOB, "timeout_seconds": "60"}, ("timeout_seconds",)),
    ("timeout a list", {**JOB, "timeout_seconds": [60]}, ("timeout_seconds",)),
    ("timeout an object", {**JOB, "timeout_seconds": {"s": 60}}, ("timeout_seconds",)),
    ("idempotency_key blank", {**JOB, "idempotency_key": ""}, ("idempotency_key",)),
    ("idempotency_key too long", {**JOB, "idempotency_key": "k" * 256}, ("idempotency_key",)),
    ("idempotency_key a number", {**JOB, "idempotency_key": 42}, ("idempotency_key",)),
    ("idempotency_key an object", {**JOB, "idempotency_key": {"k": 1}}, ("idempotency_key",)),
    ("idempotency_key with NUL", {**JOB, "idempotency_key": "a\u0000b"}, ("idempotency_key",)),
    ("unknown top-level field", {**JOB, "prio": "high"}, ("prio",)),
    ("camelCase field", {**JOB, "dependsOn": []}, ("dependsOn",)),
    ("batch-only field", {**JOB, "key": "a"}, ("key",)),
    ("output-only field", {**JOB, "status": "completed"}, ("status",)),
]


@pytest.mark.parametrize(
    ("body", "path"), [c[1:] for c in INVALID_JOBS], ids=[c[0] for c in INVALID_JOBS]
)
def test_an_invalid_job_is_400_naming_the_field_and_stores_nothing(
    api: APIClient, nothing_stored: None, body: dict[str, Any], path: Path
) -> None:
    response = api.post("/jobs/", body, format="json")
    assert response.status_code == 400, response.content
    assert_names(response.json(), path)


def test_every_bad_field_is_named_at_once(api: APIClient, nothing_stored: None) -> None:
    body = {
        "type": "nope",
        "priority": "x",
        "max_attempts": 0,
        RR: {"cpu_units": 0, "memory_mb": 0},
    }
    response = api.post("/jobs/", body, format="json")
    assert response.status_code == 400
    for path in [("type",), ("priority",), ("max_attempts",), (RR, "cpu_units"), (RR, "memory_mb")]:
        assert_names(response.json(), path)


@pytest.mark.parametrize(
    ("parent_is", "message"),
    [
        ("another user's", "unknown"),
        ("failed", "failed"),
        ("cancelled", "cancelled"),
    ],
)
def test_a_parent_that_is_not_mine_or_will_never_complete_is_refused(
    api: APIClient, other_user: Any, job_factory: Any, parent_is: str, message: str
) -> None:
    if parent_is == "another user's":
        parent = job_factory(owner=other_user)
    else:
        parent = job_factory()
        if parent_is == "failed":
            job_dead_letter_waiting(
                job_id=parent.id,
                reason=DeadLetterReason.MAX_ATTEMPTS,
                error="x",
            )
        else:
            move_to(parent, S.CANCELLED)
    before = row_counts()
    response = api.post("/jobs/", {**JOB, "depends_on": [str(parent.id)]}, format="json")
    assert response.status_code == 400, response.content
    assert_names(response.json(), ("depends_on",))
    assert message in " ".join(response.json()["depends_on"])
    assert row_counts() == before


def test_the_payload_limit_follows_the_setting(api: APIClient, settings: Any) -> None:
    settings.DRACONIC_MAX_PAYLOAD_BYTES = 100
    at_limit = {"b": "x" * (100 - len('{"b":""}'))}
    assert api.post("/jobs/", {**JOB, "payload": at_limit}, format="json").status_code == 201
    before = row_counts()
    over = {"b": "x" * (101 - len('{"b":""}'))}
    response = api.post("/jobs/", {**JOB, "payload": over}, format="json")
    assert response.status_code == 400, response.content
    assert "100 bytes" in " ".join(response.json()["payload"])
    assert row_counts() == before


def test_a_64_kib_payload_is_accepted(api: APIClient) -> None:
    payload = {"b": "x" * (64 * 1024 - len('{"b":""}'))}
    response = api.post("/jobs/", {**JOB, "payload": payload}, format="json")
    assert response.status_code == 201, response.content
    assert Job.objects.get(id=response.json()["id"]).payload == payload


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_attempts", 1), ("max_attempts", 20), ("timeout_seconds", 1), ("timeout_seconds", 86400)],
)
def test_the_bounds_themselves_are_accepted(api: APIClient, field: str, value: int) -> None:
    response = api.post("/jobs/", {**JOB, field: value}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()[field] == value


def test_one_hundred_parents_are_accepted(api: APIClient, job_factory: Any) -> None:
    parents = [str(job_factory().id) for _ in range(100)]
    response = api.post("/jobs/", {**JOB, "depends_on": parents}, format="json")
    assert response.status_code == 201, response.content
    assert JobDependency.objects.filter(job_id=response.json()["id"]).count() == 100


# --- bodies that are not a job at all, and hostile input -------------------------------

RAW_BODIES: list[tuple[str, bytes]] = [
    ("empty body", b""),
    ("truncated JSON", b'{"type": '),
    ("single quotes", b"{'type': 'noop'}"),
    ("trailing comma", b'{"type": "noop",}'),
    ("not JSON", b"type=noop"),
    ("a JSON list", b'[{"type": "noop"}]'),
    ("a JSON string", b'"noop"'),
    ("a JSON number", b"42"),
    ("JSON null", b"null"),
    ("NaN", b'{"type": "noop", "payload": {"x": NaN}}'),
    ("Infinity", b'{"type": "noop", "max_attempts": Infinity}'),
    ("a float overflowing to infinity", b'{"type": "noop", "payload": {"x": 1e400}}'),
    ("an integer of 5000 digits", b'{"type": "noop", "payload": {"x": 1' + b"0" * 5000 + b"}}"),
    ("nested 100000 deep", b"[" * 100_000 + b"]" * 100_000),
    (
        "a payload nested 5000 deep",
        b'{"type": "noop", "payload": ' + b'{"a":' * 5000 + b"1" + b"}" * 5001,
    ),
    ("a lone surrogate in the payload", b'{"type": "noop", "payload": {"x": "\\ud800"}}'),
    ("a lone surrogate in a field name", b'{"type": "noop", "\\udfff": 1}'),
    ("a lone surrogate in the type", b'{"type": "no\\udc00op"}'),
    ("invalid UTF-8", b'{"type": "\xff\xfe"}'),
    ("a NUL escape in the type", b'{"type": "noop\\u0000"}'),
]


@pytest.mark.parametrize("raw", [c[1] for c in RAW_BODIES], ids=[c[0] for c in RAW_BODIES])
def test_a_body_that_is_not_a_storable_job_is_400_never_500(
    api: APIClient, nothing_stored: None, raw: bytes
) -> None:
    response = api.generic("POST", "/jobs/", raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert isinstance(response.json(), dict) and response.json()


def test_a_non_json_content_type_is_415(api: APIClient, nothing_stored: None) -> None:
    response = api.post("/jobs/", {"type": "noop"})  # multipart form
    assert response.status_code == 415, response.content


def test_unicode_in_the_payload_is_stored_as_sent(api: APIClient) -> None:
    payload = {"name": "Zoë 🐉", "ключ": ["日本語", "\u200b", "e\u0301"]}
    response = api.post("/jobs/", {**JOB, "payload": payload}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["payload"] == payload
    assert Job.objects.get(id=response.json()["id"]).payload == payload


# --- batches ------------------------------------------------------------------------------

INVALID_BATCHES: list[tuple[str, dict[str, Any], Path]] = [
    ("jobs missing", {}, ("jobs",)),
    ("jobs empty", {"jobs": []}, ("jobs",)),
    ("jobs an object", {"jobs": {"a": JOB}}, ("jobs",)),
    ("jobs null", {"jobs": None}, ("jobs",)),
    ("a job is not an object", {"jobs": [JOB, 5]}, ("jobs", "1")),
    ("a job has a bad type", {"jobs": [JOB, {"type": "nope"}]}, ("jobs", "1", "type")),
    (
        "a job has bad resources",
        {"jobs": [{**JOB, RR: {"cpu_units": 99}}]},
        ("jobs", "0", RR, "cpu_units"),
    ),
    (
        "a job has an unknown field",
        {"jobs": [{**JOB, "idempotency_key": "k"}]},
        ("jobs", "0", "idempotency_key"),
    ),
    ("a key is a number", {"jobs": [{**JOB, "key": 1}]}, ("jobs", "0", "key")),
    ("duplicate keys", {"jobs": [{**JOB, "key": "a"}, {**JOB, "key": "a"}]}, ("jobs",)),
    (
        "duplicate references",
        {"jobs": [{**JOB, "key": "a"}, {**JOB, "depends_on": ["a", "a"]}]},
        ("jobs", "1", "depends_on"),
    ),
    (
        "an unknown key",
        {"jobs": [{**JOB, "key": "a", "depends_on": ["b"]}]},
        ("jobs", "0", "depends_on"),
    ),
    ("an unknown job id", {"jobs": [{**JOB, "depends_on": [new_id()]}]}, ("jobs", "depends_on")),
    ("an unknown top-level field", {"jobs": [JOB], "atomic": True}, ("atomic",)),
]


@pytest.mark.parametrize(
    ("body", "path"), [c[1:] for c in INVALID_BATCHES], ids=[c[0] for c in INVALID_BATCHES]
)
def test_an_invalid_batch_is_400_naming_the_field_and_stores_nothing(
    api: APIClient, nothing_stored: None, body: dict[str, Any], path: Path
) -> None:
    response = api.post("/jobs/batch/", body, format="json")
    assert response.status_code == 400, response.content
    assert_names(response.json(), path)


def test_a_batch_over_the_size_limit_is_refused(api: APIClient, settings: Any) -> None:
    settings.DRACONIC_MAX_BATCH_SIZE = 3
    before = row_counts()
    response = api.post("/jobs/batch/", {"jobs": [JOB] * 4}, format="json")
    assert response.status_code == 400, response.content
    assert_names(response.json(), ("jobs",))
    assert row_counts() == before


def test_a_batch_with_one_bad_job_stores_none_of_them(api: APIClient, job_factory: Any) -> None:
    dead = job_factory()
    move_to(dead, S.CANCELLED)
    before = row_counts()
    body = {"jobs": [{**JOB, "key": "ok"}, {**JOB, "depends_on": ["ok", str(dead.id)]}]}
    response = api.post("/jobs/batch/", body, format="json")
    assert response.status_code == 400, response.content
    assert "cancelled" in str(response.json())
    assert row_counts() == before


# --- POST /jobs/{id}/dependencies/ ---------------------------------------------------------

INVALID_DEPENDENCIES: list[tuple[str, Any, Path]] = [
    ("missing", {}, ("depends_on",)),
    ("empty", {"depends_on": []}, ("depends_on",)),
    ("a string", {"depends_on": SAME}, ("depends_on",)),
    ("non-UUID", {"depends_on": ["nope"]}, ("depends_on",)),
    ("duplicates", {"depends_on": [SAME, SAME]}, ("depends_on",)),
    ("over 100", {"depends_on": [new_id() for _ in range(101)]}, ("depends_on",)),
    ("unknown id", {"depends_on": [new_id()]}, ("depends_on",)),
    ("unknown field", {"depends_on": [SAME], "replace": True}, ("replace",)),
    ("a list body", [SAME], ("non_field_errors",)),
]


@pytest.mark.parametrize(
    ("body", "path"),
    [c[1:] for c in INVALID_DEPENDENCIES],
    ids=[c[0] for c in INVALID_DEPENDENCIES],
)
def test_invalid_dependencies_are_400_naming_the_field_and_store_nothing(
    api: APIClient, job_factory: Any, body: Any, path: Path
) -> None:
    job = job_factory()
    before = row_counts()
    response = api.post(f"/jobs/{job.id}/dependencies/", body, format="json")
    assert response.status_code == 400, response.content
    assert_names(response.json(), path)
    assert row_counts() == before


def test_a_dependency_on_another_users_job_is_refused(
    api: APIClient, job_factory: Any, other_user: Any
) -> None:
    job, theirs = job_factory(), job_factory(owner=other_user)
    before = row_counts()
    response = api.post(
        f"/jobs/{job.id}/dependencies/", {"depends_on": [str(theirs.id)]}, format="json"
    )
    assert response.status_code == 400, response.content
    assert_names(response.json(), ("depends_on",))
    assert row_counts() == before


# --- query parameters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "path"),
    [
        ("status=bogus", ("status",)),
        ("status=PENDING", ("status",)),
        ("priority=urgent", ("priority",)),
        ("priority=0", ("priority",)),
        ("type=" + "x" * 256, ("type",)),
        ("type=%00", ("type",)),
    ],
)
def test_a_bad_list_filter_is_400_naming_it(api: APIClient, query: str, path: Path) -> None:
    response = api.get(f"/jobs/?{query}")
    assert response.status_code == 400, response.content
    assert_names(response.json(), path)


@pytest.mark.parametrize("since", ["abc", "-1", "1.5", "9" * 40, "%F0%9F%90%89", "%C2%B2", ""])
def test_a_bad_logs_cursor_is_400_naming_since(
    api: APIClient, job_factory: Any, since: str
) -> None:
    job = job_factory()
    response = api.get(f"/jobs/{job.id}/logs?since={since}")
    assert response.status_code == 400, response.content
    assert_names(response.json(), ("since",))


@pytest.mark.parametrize(
    "query",
    ["page=abc", "page=0", "page=999", "page_size=-1", "page_size=abc", f"page_size={10**30}"],
)
def test_odd_pagination_parameters_never_give_a_500(
    api: APIClient, job_factory: Any, query: str
) -> None:
    job_factory()
    response = api.get(f"/jobs/?{query}")
    assert response.status_code in (200, 400, 404), response.content
    assert isinstance(response.json(), dict)


@pytest.mark.parametrize("query", ["reason=bogus", "type=" + "x" * 256])
def test_a_bad_dlq_filter_is_400(staff_api: APIClient, query: str) -> None:
    response = staff_api.get(f"/admin/dlq/?{query}")
    assert response.status_code == 400, response.content
    assert_names(response.json(), (query.split("=")[0],))


@pytest.mark.parametrize(
    ("flat", "nested"),
    [
        ({"type": ["x"]}, {"type": ["x"]}),
        ({"jobs[2].depends_on": ["x"]}, {"jobs": {"2": {"depends_on": ["x"]}}}),
        (
            {"resource_requirements.cpu_units": ["x"]},
            {"resource_requirements": {"cpu_units": ["x"]}},
        ),
        ({"jobs": ["a"], "jobs.depends_on": ["b"]}, {"jobs": ["a"], "jobs.depends_on": ["b"]}),
    ],
)
def test_service_error_paths_are_nested_like_drf_errors(
    flat: dict[str, list[str]], nested: dict[str, Any]
) -> None:
    assert nest_errors(flat) == nested
