"""The django.tasks backend's and the Celery bridge's pure parts: the priority levels, the
payload of a call, Celery's options as a job type, the refusals, and a job read back as a
``TaskResult`` (no server here; the e2e tests send to one)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from celery import Celery
from django_tasks import TaskResultStatus

from draconic_sdk import bridging
from draconic_sdk.celery_bridge import BridgeError, check_app, mapping
from draconic_sdk.django_tasks import results, source
from draconic_sdk.models import Job, LogEntry
from tests.e2e import djt_tasks

LEVELS = ["critical", "high", "normal", "low"]


@pytest.mark.parametrize(
    ("priority", "level"),
    [(100, "critical"), (50, "critical"), (49, "high"), (1, "high"), (0, "normal"),
     (-1, "normal"), (-49, "normal"), (-50, "low"), (-100, "low")],
)  # fmt: skip
def test_django_priorities_fall_into_levels_at_their_edges(priority: int, level: str) -> None:
    assert bridging.level_of(priority) == level


def test_a_larger_priority_is_never_a_less_urgent_level() -> None:
    levels = [LEVELS.index(bridging.level_of(p)) for p in range(-100, 101)]
    assert levels == sorted(levels, reverse=True) and set(levels) == {0, 1, 2, 3}


@pytest.mark.parametrize("bad", [101, -101, 1.5, True, "1"])
def test_a_priority_out_of_range_or_not_an_integer_is_refused(bad: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        bridging.level_of(bad)


def resize(image_id: int, width: int = 100, *, crop: bool = False, **extra: Any) -> None: ...


def test_a_calls_arguments_become_the_payload_by_parameter_name() -> None:
    assert bridging.payload_of(resize, (7,), {"crop": True}) == {"image_id": 7, "crop": True}
    assert bridging.payload_of(resize, (7, 50), {"note": (1, 2)}) == {
        "image_id": 7,
        "width": 50,
        "note": [1, 2],  # as the server stores it
    }
    with pytest.raises(bridging.PayloadError, match="missing"):
        bridging.payload_of(resize, (), {})
    with pytest.raises(bridging.PayloadError, match="JSON"):
        bridging.payload_of(resize, (object(),), {})


def test_a_django_task_is_a_job_type_named_by_its_path_with_its_signatures_schema() -> None:
    types = {t.name: t for t in source.job_types(djt_tasks)}
    assert set(types) == {
        "tests.e2e.djt_tasks.add",
        "tests.e2e.djt_tasks.explode",
        "tests.e2e.djt_tasks.succeed_on_attempt",
    }
    add = types["tests.e2e.djt_tasks.add"]
    assert add.schema["required"] == ["a"] and add.validate({"a": "x"}) == {
        "payload.a": "Must be of type integer."
    }
    with_context = types["tests.e2e.djt_tasks.succeed_on_attempt"]
    assert list(with_context.schema["properties"]) == ["attempt"]  # not its context

    class Ctx:
        job_id, attempt = "j-1", 3

    assert with_context.run(Ctx(), {"attempt": 3}) == {"attempt": 3}
    assert add.run(Ctx(), {"a": 2, "b": 5}) == 7


# --- Celery ---------------------------------------------------------------------------------

app = Celery(
    "bridge_unit", task_cls="draconic_sdk.celery_bridge:DraconicTask", set_as_current=False
)


@app.task(autoretry_for=(OSError,), dont_autoretry_for=(FileNotFoundError,), max_retries=4,
          retry_backoff=2, retry_backoff_max=30, retry_jitter=False, soft_time_limit=9.5,
          time_limit=20, rate_limit="0.5/s")  # fmt: skip
def restock(sku: str, count: int = 1) -> int:
    return count


@app.task
def plain(sku: str) -> str:
    return sku


@app.task(autoretry_for=(OSError,), retry_backoff=False, default_retry_delay=7, max_retries=None)
def steady(sku: str) -> str:
    return sku


def test_celery_options_map_onto_attempts_retry_policy_timeout_and_rate() -> None:
    options = mapping.mapped(restock)
    assert (options.max_attempts, options.timeout_seconds, options.rate) == (5, 10, "30/m")
    retry = options.retry
    assert retry is not None
    assert (retry.base_seconds, retry.cap_seconds, retry.jitter) == (2, 30, 0)
    assert retry.retries(OSError()) and not retry.retries(FileNotFoundError())
    assert not retry.retries(ValueError())
    described = mapping.job_type_of(restock).describe()
    assert described["defaults"] == {"max_attempts": 5, "timeout_seconds": 10}
    assert described["payload_schema"]["required"] == ["sku"]


def test_without_autoretry_for_a_celery_task_runs_once_and_a_fixed_delay_stays_fixed() -> None:
    assert mapping.mapped(plain).max_attempts == 1 and mapping.mapped(plain).retry is None
    steady_options = mapping.mapped(steady)
    assert steady_options.max_attempts == mapping.MAX_ATTEMPTS
    assert steady_options.retry is not None
    assert (steady_options.retry.base_seconds, steady_options.retry.cap_seconds) == (7, 7)


@pytest.mark.parametrize(
    ("celery", "draconic"),
    [("10/s", "10/s"), ("100", "100/s"), ("600/m", "10/s"), ("30/m", "30/m"),
     ("0.5/s", "30/m"), ("1/h", "1/h"), ("0.001/s", "3/h"), (None, None), ("0/m", None)],
)  # fmt: skip
def test_a_celery_rate_limit_is_the_same_rate_in_a_draconic_unit(
    celery: str | None, draconic: str | None
) -> None:
    assert mapping.rate_of(celery) == draconic


def test_what_cannot_map_stops_the_start_up_with_what_to_do() -> None:
    broken = Celery(
        "bridge_broken", task_cls="draconic_sdk.celery_bridge:DraconicTask", set_as_current=False
    )

    @broken.task(serializer="pickle", shared=False)
    def pickled(order: dict[str, Any]) -> None: ...

    @broken.task(bind=True, shared=False)
    def bound(self: Any, order_id: int) -> None: ...

    @broken.task(shared=False)
    def starred(*order_ids: int) -> None: ...

    with pytest.raises(BridgeError) as refused:
        check_app(broken)
    message = str(refused.value)
    assert "serializer='json'" in message and "drop bind=True" in message
    assert "named parameters" in message
    assert "celery.chord" not in message  # Celery's own tasks are not the team's
    mine = [t.name for t in check_app(app) if t.name.startswith(__name__)]
    assert mine == [f"{__name__}.{name}" for name in ("plain", "restock", "steady")]


def test_a_module_bridges_the_tasks_it_defines_not_those_it_imports() -> None:
    from draconic_sdk import celery_bridge

    here = {t.name for t in celery_bridge.job_types(sys.modules[__name__])}
    assert here == {f"{__name__}.{name}" for name in ("plain", "restock", "steady")}
    importer = type(sys)("bridge_module")
    importer.restock = restock  # type: ignore[attr-defined]
    assert celery_bridge.job_types(importer) == []


# --- a job read back as a TaskResult -------------------------------------------------------

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def job(status: str, **fields: Any) -> Job:
    data = {
        "id": "8a1c1d8e-0000-4000-8000-000000000001",
        "type": "tests.e2e.djt_tasks.add",
        "priority": "normal",
        "status": status,
        "payload": {"a": 1},
        "created_at": T0.isoformat(),
        "completed_at": T0.replace(minute=5).isoformat(),
        **fields,
    }
    return Job.from_json(data)


def line(n: int, to: str, frm: str = "", **context: Any) -> LogEntry:
    at = T0.replace(minute=n).isoformat()
    return LogEntry.from_json(
        {"id": n, "to_status": to, "from_status": frm, "context": context, "created_at": at}
    )


def test_every_attempt_gives_a_worker_and_every_failed_one_an_error() -> None:
    trace = 'Traceback (most recent call last):\n  File "x"\nshop.errors.OutOfStock: sku 7\n'
    logs = [
        line(0, "pending"),
        line(1, "queued", "pending"),
        line(2, "running", "queued", worker="w1@host"),
        line(3, "retrying", "running", error="OutOfStock: sku 7", traceback=trace),
        line(4, "running", "queued", worker="w2@host"),
        line(5, "failed", "running", reason="timeout", error="timed out after 5s"),
    ]
    read = results.task_result(
        task=djt_tasks.add, job=job("failed", result=None), logs=logs, backend="default"
    )
    assert read.status == TaskResultStatus.FAILED and read.worker_ids == ["w1@host", "w2@host"]
    assert [e.exception_class_path for e in read.errors] == [
        "shop.errors.OutOfStock",
        "draconic_sdk.django_tasks.results.AttemptTimedOut",
    ]
    assert read.errors[0].traceback == trace and read.errors[1].traceback == "timed out after 5s"
    assert (read.started_at, read.last_attempted_at) == (T0.replace(minute=2), T0.replace(minute=4))
    assert read.finished_at == T0.replace(minute=5) and read.kwargs == {"a": 1}


@pytest.mark.parametrize(
    ("status", "expected"),
    [("pending", "READY"), ("queued", "READY"), ("retrying", "READY"), ("running", "RUNNING"),
     ("completed", "SUCCESSFUL"), ("failed", "FAILED"), ("cancelled", "FAILED")],
)  # fmt: skip
def test_each_draconic_status_is_a_django_one(status: str, expected: str) -> None:
    read = results.task_result(task=djt_tasks.add, job=job(status, result=3), logs=[], backend="x")
    assert read.status == expected
    if expected == "SUCCESSFUL":
        assert read.return_value == 3
    else:
        assert read.finished_at is None or read.is_finished


@pytest.mark.parametrize(
    ("trace", "path"),
    [("Traceback...\nValueError: bad\n", "builtins.ValueError"),
     ("Traceback...\nshop.tasks.Oops\n", "shop.tasks.Oops"),
     ("", "draconic_sdk.django_tasks.results.AttemptLost"),
     ("not a traceback: at all\n", "draconic_sdk.django_tasks.results.AttemptLost")],
)  # fmt: skip
def test_the_exception_class_path_is_read_from_the_tracebacks_last_line(
    trace: str, path: str
) -> None:
    assert results.exception_class_path(trace) == path


def test_discovery_finds_a_modules_tasks_through_the_registered_sources() -> None:
    import draconic_sdk.celery_bridge
    import draconic_sdk.django_tasks

    assert draconic_sdk.django_tasks.source.job_types in bridging.sources()
    assert draconic_sdk.celery_bridge.job_types in bridging.sources()
    names = {t.name for t in bridging.job_types_of(djt_tasks)}
    assert names == {
        f"tests.e2e.djt_tasks.{name}"
        for name in ("add", "explode", "succeed_on_attempt", "flaky_total", "label")
    }


def test_a_task_taking_star_args_is_refused_where_it_is_defined() -> None:
    from django.test import override_settings
    from django_tasks import task
    from django_tasks.exceptions import InvalidTaskError

    tasks = {"default": {"BACKEND": "draconic_sdk.django_tasks.DraconicBackend"}}
    with override_settings(TASKS=tasks), pytest.raises(InvalidTaskError, match=r"\*skus"):
        task()(_star_args)


def _star_args(*skus: str) -> None: ...
