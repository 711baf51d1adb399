"""Tiny typed readers for settings that come from the environment.

Every reader raises ``ImproperlyConfigured`` naming the variable when its value cannot be
used, so a bad deployment fails at start-up instead of at the first request.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
# The spellings of a period that DRF's SimpleRateThrottle.parse_rate reads (it looks only at
# the first letter, so it would also take "10/sausage" as ten a second).
_RATE = re.compile(r"([1-9][0-9]*)/(s|sec|second|m|min|minute|h|hour|d|day)")


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):  # float() accepts "nan" and "inf"; no setting wants them
        raise ImproperlyConfigured(f"{name} must be a finite number, got {raw!r}")
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_url(name: str, default: str, *, schemes: tuple[str, ...]) -> str:
    raw = os.environ.get(name, default)
    parsed = urlparse(raw)
    if parsed.scheme not in schemes or (not parsed.hostname and not parsed.path):
        raise ImproperlyConfigured(
            f"{name} must be a URL starting with {' or '.join(s + '://' for s in schemes)}, got {raw!r}"
        )
    return raw


def env_rate(name: str, default: str) -> str:
    """A DRF throttle rate, ``N/period``: N a positive integer, the period one of s, sec,
    second, m, min, minute, h, hour, d or day."""
    raw = os.environ.get(name, default).strip()
    if not _RATE.fullmatch(raw):
        raise ImproperlyConfigured(
            f"{name} must be a rate like 60/min (a positive integer, '/', then s, sec, second, "
            f"m, min, minute, h, hour, d or day), got {raw!r}"
        )
    return raw


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = os.environ.get(name, default).strip().upper()
    if raw not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def env_json(name: str) -> dict[str, Any]:
    """A JSON object (keyword arguments for a class, say); unset or blank is ``{}``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object, got {raw[:100]!r}")
    return value


#: The default of ``DRACONIC_SHUTDOWN_GRACE_SECONDS``.
SHUTDOWN_GRACE_SECONDS = 30.0


def shutdown_grace_seconds() -> float:
    """``DRACONIC_SHUTDOWN_GRACE_SECONDS``: how long a stopping worker lets its running jobs
    finish. Read here too, not only in settings, because ``make run``'s process managers
    (``draconic.supervise``, ``draconic.run_honcho``) bound their stop on it without Django."""
    return env_float("DRACONIC_SHUTDOWN_GRACE_SECONDS", SHUTDOWN_GRACE_SECONDS, minimum=0)
