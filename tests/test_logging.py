"""Structured logs: one JSON line per record, with the job fields of state changes."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings

from draconic.logging import JsonFormatter, process_role
from jobs.models import Job, JobStatus
from tests.conftest import wait_until

#: Celery's own text format, "[2024-01-01 00:00:00,000: INFO/MainProcess] ...": never expected.
CELERY_TEXT_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,]+: [A-Z]+/")


def _record(message: str = "hello %s", args: Any = ("world",), **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("draconic.test", logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


def test_it_formats_a_record_as_one_json_object_with_the_base_fields():
    line = JsonFormatter(process="worker").format(_record())
    data = json.loads(line)
    assert data["level"] == "WARNING"
    assert data["logger"] == "draconic.test"
    assert data["message"] == "hello world"
    assert data["process"] == "worker"
    assert isinstance(data["pid"], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", data["ts"])


def test_it_adds_the_job_fields_passed_in_extra_and_stringifies_what_json_cannot_hold():
    line = JsonFormatter(process="api").format(
        _record(job_id="abc", attempt=2, transition="queued->running", when=object())
    )
    data = json.loads(line)
    assert (data["job_id"], data["attempt"], data["transition"]) == ("abc", 2, "queued->running")
    assert data["when"].startswith("<object object")


def test_it_keeps_a_traceback_inside_the_single_line():
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = JsonFormatter(process="api").format(record)
    assert "\n" not in line
    assert "ValueError: bad\nvalue" in json.loads(line)["exc"]


@pytest.mark.parametrize(
    ("argv", "role"),
    [
        (["/venv/lib/celery/__main__.py", "-A", "draconic", "worker", "-Q", "normal"], "worker"),
        (["/venv/bin/celery", "-A", "draconic", "beat"], "scheduler"),
        (["manage.py", "scheduler"], "scheduler"),
        (["manage.py", "migrate"], "migrate"),
        (["/venv/bin/daphne", "draconic.asgi:application"], "api"),
        (["/venv/bin/gunicorn", "draconic.wsgi"], "api"),
    ],
)
def test_it_names_the_process_role_from_the_command_line(argv, role, monkeypatch):
    monkeypatch.delenv("DRACONIC_PROCESS", raising=False)
    assert process_role(argv) == role


def test_an_explicit_process_role_wins(monkeypatch):
    monkeypatch.setenv("DRACONIC_PROCESS", "api-blue")
    assert process_role(["manage.py", "scheduler"]) == "api-blue"


@pytest.fixture
def console_lines() -> Iterator[io.StringIO]:
    """The console handler that settings.LOGGING installed on the root logger, writing into
    a buffer for the duration of the test."""
    root = logging.getLogger()
    handler = next(h for h in root.handlers if isinstance(h.formatter, JsonFormatter))
    buffer = io.StringIO()
    previous = handler.setStream(buffer)  # type: ignore[attr-defined]
    yield buffer
    handler.setStream(previous)  # type: ignore[attr-defined]


def test_settings_log_through_the_json_formatter_at_log_level():
    root = logging.getLogger()
    assert any(isinstance(h.formatter, JsonFormatter) for h in root.handlers)
    assert root.level == logging.getLevelName(settings.LOG_LEVEL)


@pytest.mark.django_db(transaction=True)
def test_a_real_state_change_logs_a_json_line_with_job_id_attempt_and_transition(
    job_factory, console_lines
):
    job = job_factory()
    lines = [json.loads(line) for line in console_lines.getvalue().splitlines()]
    mine = [line for line in lines if line.get("job_id") == str(job.id)]
    assert mine, lines
    assert mine[0]["transition"] == "new->pending"
    assert mine[0]["attempt"] == 0
    assert mine[0]["logger"] == "draconic.events"
    assert mine[0]["level"] == "INFO"


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.e2e
def test_the_worker_and_the_scheduler_write_json_lines_for_a_job_they_run(platform, api):
    platform.start_worker()
    platform.start_scheduler()
    response = api.post("/jobs/", {"type": "noop"}, format="json")
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    wait_until(
        lambda: Job.objects.filter(id=job_id, status=JobStatus.COMPLETED).exists(),
        message=f"job {job_id} to complete\n{platform.logs()}",
    )

    def transitions(name: str) -> list[tuple[str, str, int]]:
        text = (platform.tmp / f"{name}.log").read_text(errors="replace")
        assert not [line for line in text.splitlines() if CELERY_TEXT_LINE.match(line)], text
        return [
            (line["process"], line["transition"], line["attempt"])
            for line in _json_lines(text)
            if line.get("job_id") == job_id and "transition" in line
        ]

    # The running->completed line is written right after the commit; wait for the file.
    wait_until(lambda: ("worker", "running->completed", 1) in transitions("worker"), timeout=60)
    assert transitions("worker") == [
        ("worker", "queued->running", 1),
        ("worker", "running->completed", 1),
    ]
    assert transitions("scheduler") == [("scheduler", "pending->queued", 1)]
