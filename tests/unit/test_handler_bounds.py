"""Each handler bounds its own payload, whatever the API's size limit lets through."""

from __future__ import annotations

import math

import pytest

from jobs.types import get_handler

BIG = "x" * (100 * 1024 + 1)


@pytest.mark.parametrize(
    ("job_type", "payload", "field"),
    [
        ("send_email", {"to": "a@example.com", "subject": "s", "body": BIG}, "payload.body"),
        (
            "send_email",
            {"to": "a@example.com", "subject": "s", "body": "b", "html_body": BIG},
            "payload.html_body",
        ),
        ("data_export", {"format": "csv", "rows": [{}] * 10_001}, "payload.rows"),
        ("data_processing", {"data": [1] * 1_000_001}, "payload.data"),
        ("data_processing", {"data": [1, math.nan]}, "payload.data"),
        ("data_processing", {"data": [math.inf]}, "payload.data"),
    ],
)
def test_the_handlers_bound_what_the_api_size_limit_may_let_through(job_type, payload, field):
    """Payloads above the API's byte limit never reach a handler over REST, but a deployment may
    raise that limit and jobs can be stored around the API: the handler's own bounds still hold."""
    handler = get_handler(job_type)
    assert handler is not None
    assert field in handler.validate_payload(payload)
