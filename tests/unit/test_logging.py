"""Structured logs: one JSON line per record (the formatter and the settings that install it)."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from django.conf import settings

from draconic.logging import JsonFormatter, process_role


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


def test_settings_log_through_the_json_formatter_at_log_level():
    root = logging.getLogger()
    assert any(isinstance(h.formatter, JsonFormatter) for h in root.handlers)
    assert root.level == logging.getLevelName(settings.LOG_LEVEL)
