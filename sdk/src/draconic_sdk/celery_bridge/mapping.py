"""How a Celery task's options become a Draconic job type, and what cannot.

| Celery | Draconic |
| --- | --- |
| ``autoretry_for`` | ``RetryPolicy.retry_on`` (``dont_autoretry_for``: ``give_up_on``) |
| ``max_retries`` (with ``autoretry_for``) | ``max_attempts = max_retries + 1`` (``None``: 20, the most) |
| no ``autoretry_for`` | ``max_attempts = 1``: Celery retries only when asked to |
| ``retry_backoff`` (True: 1 s, n: n s), ``retry_backoff_max`` | ``base_seconds``, ``cap_seconds`` |
| ``retry_backoff=False`` | a fixed ``default_retry_delay`` (base = cap) |
| ``retry_jitter`` (Celery's full jitter) | ``jitter=1.0`` (0 without) |
| ``soft_time_limit``, else ``time_limit`` | ``timeout_seconds`` (rounded up) |
| ``rate_limit`` ("10/m", "100" per second) | a limit rule ``type:<name>`` with that rate |

Refused, each with what to do instead: a pickle serializer (payloads are JSON), ``bind=True``
(the body would use Celery's ``self.request``/``self.retry``, which no Draconic worker gives),
and, at call time, chords, links and other canvas options.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from draconic_sdk.jobtypes import Defaults, JobType, RetryPolicy, schema_from_signature

#: The server's most attempts for one job.
MAX_ATTEMPTS = 20


class BridgeError(ValueError):
    """A Celery task (or call) the bridge cannot run on Draconic; the message says why and
    what to do instead. A ValueError, as the worker's other start-up refusals are."""


@dataclass(frozen=True)
class Mapped:
    """What a Celery task's options come to on Draconic."""

    max_attempts: int
    timeout_seconds: int | None
    retry: RetryPolicy | None
    rate: str | None


def resolved(task: Any) -> Any:
    """The task behind a Celery proxy (``@app.task`` before the app is finalized,
    ``@shared_task``), or ``task`` itself."""
    getter = getattr(task, "_get_current_object", None)
    return getter() if callable(getter) else task


def body_of(task: Any) -> Callable[..., Any]:
    """The task's own function (Celery wraps ``run`` for ``autoretry_for``; its retries are
    Draconic's here)."""
    task = resolved(task)
    return getattr(task, "_orig_run", None) or task.run  # type: ignore[no-any-return]


def is_bound(task: Any) -> bool:
    """Whether the task was made with ``bind=True`` (its ``run`` takes ``self``)."""
    for cls in type(resolved(task)).__mro__:
        if "run" in cls.__dict__:
            return not isinstance(cls.__dict__["run"], staticmethod) and cls.__name__ != "Task"
    return False


def problems(task: Any, *, app_serializer: str | None = None) -> list[str]:
    """Why ``task`` cannot be bridged (empty: it can), each with what to do."""
    task = resolved(task)
    name = getattr(task, "name", type(task).__name__)
    found = []
    serializer = getattr(task, "serializer", None) or app_serializer
    if serializer and serializer != "json":
        found.append(
            f"{name}: serializer={serializer!r}; a Draconic payload is JSON: use "
            "serializer='json' and pass JSON values (ids rather than objects)"
        )
    if is_bound(task):
        found.append(
            f"{name}: bind=True; its body would use Celery's self.request or self.retry, which "
            "a Draconic worker does not give: drop bind=True and raise to retry (autoretry_for "
            "maps to the retry policy), or make it a @job_type taking ctx"
        )
    for param in inspect.signature(body_of(task)).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.POSITIONAL_ONLY):
            found.append(
                f"{name}: *{param.name} or positional-only parameters have no names in a "
                "payload: take named parameters"
            )
    return found


def mapped(task: Any) -> Mapped:
    task = resolved(task)
    autoretry = tuple(getattr(task, "autoretry_for", ()) or ())
    max_retries = getattr(task, "max_retries", 3)
    if not autoretry:
        attempts = 1
    elif max_retries is None:
        attempts = MAX_ATTEMPTS
    else:
        attempts = min(MAX_ATTEMPTS, int(max_retries) + 1)
    return Mapped(
        max_attempts=attempts,
        timeout_seconds=_timeout(task),
        retry=_retry(task, autoretry) if autoretry else None,
        rate=rate_of(getattr(task, "rate_limit", None)),
    )


def _timeout(task: Any) -> int | None:
    limit = getattr(task, "soft_time_limit", None) or getattr(task, "time_limit", None)
    return max(1, math.ceil(limit)) if limit else None


def _retry(task: Any, autoretry: tuple[type[BaseException], ...]) -> RetryPolicy:
    backoff = getattr(task, "retry_backoff", False)
    give_up = tuple(getattr(task, "dont_autoretry_for", ()) or ())
    if backoff:
        base = 1.0 if backoff is True else float(backoff)
        cap = max(base, float(getattr(task, "retry_backoff_max", 600)))
        jitter = 1.0 if getattr(task, "retry_jitter", True) else 0.0
        return RetryPolicy(base, cap, jitter, retry_on=autoretry, give_up_on=give_up)
    delay = float(getattr(task, "default_retry_delay", 180) or 1)
    return RetryPolicy(delay, delay, 0.0, retry_on=autoretry, give_up_on=give_up)


_UNITS = {"s": 1, "m": 60, "h": 3600}


def rate_of(rate_limit: Any) -> str | None:
    """A Celery ``rate_limit`` as a Draconic limit's rate ("10/s", "600/m", "1000/h"): the
    same number of starts per second, in the smallest unit that makes it whole (rounded down
    to whole starts per hour if none does)."""
    if rate_limit in (None, "", 0):
        return None
    text = str(rate_limit).strip()
    number, _, unit = text.partition("/")
    unit = unit.strip()[:1] or "s"
    if unit not in _UNITS:
        raise BridgeError(f"rate_limit={rate_limit!r}: the unit must be s, m or h")
    try:
        per_second = Fraction(number.strip()) / _UNITS[unit]
    except (ValueError, ZeroDivisionError):
        raise BridgeError(f"rate_limit={rate_limit!r} is not a Celery rate ('10/m')") from None
    if per_second <= 0:
        return None
    for letter, seconds in _UNITS.items():
        count = per_second * seconds
        if count.denominator == 1 and count <= 9_999_999:
            return f"{count.numerator}/{letter}"
    return f"{max(1, math.floor(per_second * 3600))}/h"


def job_type_of(task: Any) -> JobType:
    """The Draconic job type of a bridgeable Celery task (check ``problems`` first)."""
    task = resolved(task)
    body = body_of(task)
    options = mapped(task)
    return JobType(
        name=task.name,
        fn=body,
        defaults=Defaults(
            max_attempts=options.max_attempts, timeout_seconds=options.timeout_seconds
        ),
        retry=options.retry,
        schema=schema_from_signature(body),
        takes_context=False,
        description=inspect.getdoc(body) or "",
    )
