"""Structured logs: one JSON line per record, with the job fields of state changes."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from draconic.logging import JsonFormatter


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
