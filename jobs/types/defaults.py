"""A job's values when its body does not give them: the type's defaults, else the server's.

A type's defaults (``draconic_sdk.Defaults``) are held to the bounds a job body is held to
(``defaults_problems``, checked when the type is registered); a job body's explicit values
win over them, within the same bounds (``jobs.api.serializers``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from draconic_sdk.jobtypes import Defaults
from jobs.engine.capacity import capacity_errors

#: The server's bounds on max_attempts and timeout_seconds, for a job body and a type's defaults.
MAX_ATTEMPTS = 20
MAX_TIMEOUT_SECONDS = 86400
#: The server's own defaults, for what neither the body nor the type says.
DEFAULT_PRIORITY = "normal"
DEFAULT_CPU_UNITS = 1
DEFAULT_MEMORY_MB = 128


@dataclass(frozen=True)
class SubmitDefaults:
    priority: str
    cpu_units: int
    memory_mb: int
    max_attempts: int
    timeout_seconds: int


def submit_defaults(defaults: Defaults | None) -> SubmitDefaults:
    """What a job of a type with ``defaults`` gets for each value its body leaves out."""
    given = defaults or Defaults()
    return SubmitDefaults(
        priority=given.priority or DEFAULT_PRIORITY,
        cpu_units=given.cpu_units or DEFAULT_CPU_UNITS,
        memory_mb=given.memory_mb or DEFAULT_MEMORY_MB,
        max_attempts=given.max_attempts or settings.DRACONIC_DEFAULT_MAX_ATTEMPTS,
        timeout_seconds=given.timeout_seconds or settings.DRACONIC_DEFAULT_TIMEOUT_SECONDS,
    )


def defaults_problems(defaults: Mapping[str, Any]) -> list[str]:
    """What in a type's defaults (``Defaults.describe()``) the server would not accept from a
    job body: attempts and timeout past their bounds, resources past the cluster's capacity."""
    problems = []
    if defaults.get("max_attempts", 1) > MAX_ATTEMPTS:
        problems.append(f"max_attempts is at most {MAX_ATTEMPTS}")
    if defaults.get("timeout_seconds", 1) > MAX_TIMEOUT_SECONDS:
        problems.append(f"timeout_seconds is at most {MAX_TIMEOUT_SECONDS}")
    errors = capacity_errors(
        cpu_units=defaults.get("cpu_units", 1), memory_mb=defaults.get("memory_mb", 1)
    )
    problems.extend(f"{field.rsplit('.', 1)[-1]}: {message}" for field, message in errors.items())
    return problems
