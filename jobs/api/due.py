"""When a job may start: the request fields of a delayed job (``run_at``, ``delay_seconds``)
and the due time they give. The time is kept in PostgreSQL (``run_at``, and
``next_attempt_at``, the gate admission reads), never handed to the broker."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone
from rest_framework import serializers

#: How far ahead a job may be delayed: further is more likely a unit mistake than a plan.
MAX_DELAY = timedelta(days=366)
#: RFC 3339's date-time (section 5.6): a full date, a full time, and an offset or ``Z``.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?",
    re.ASCII,
)


class StrictNumberField(serializers.FloatField):
    """A number given as a JSON number (integer or not); strings and booleans are refused."""

    default_error_messages = {"invalid": "A valid number is required (a JSON number)."}

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return float(super().to_internal_value(data))


class AwareDateTimeField(serializers.DateTimeField):
    """An RFC 3339 date-time with its offset (``2026-12-01T14:00:00+01:00`` or ``...Z``). A
    time without one is refused rather than read in the server's zone: the client meant some
    zone, and guessing it runs the job hours early or late."""

    default_error_messages = {
        "invalid": "Not an RFC 3339 date-time (e.g. 2026-12-01T14:00:00Z or ...+01:00).",
        "naive": "Has no UTC offset; add Z or an offset such as +01:00 (a time without one is"
        " ambiguous).",
        "range": "Is out of range: in UTC it falls outside the years 1-9999.",
    }

    def to_internal_value(self, value: Any) -> datetime:
        match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            self.fail("invalid")
        if match.group("offset") is None:
            self.fail("naive")
        try:
            parsed = datetime.fromisoformat(value.upper().replace(" ", "T"))
        except ValueError:  # the shape is right, the values are not (month 13, hour 25)
            self.fail("invalid")
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00:00+01:00 is in year 0 in UTC
            self.fail("range")


def due_time(data: Mapping[str, Any]) -> datetime | None:
    """When a validated job may start: its ``run_at``, or now plus its ``delay_seconds``;
    None when it gave neither (as soon as it is ready)."""
    if "delay_seconds" in data:
        return timezone.now() + timedelta(seconds=data["delay_seconds"])
    run_at: datetime | None = data.get("run_at")
    return run_at
