"""What the django.tasks backend and the Celery bridge share: how a call's arguments become a
job's payload, how Django's priorities map onto Draconic's levels, and sending on commit.

The payload of a call is its arguments bound to the function's parameter names
(``resize(7, width=3)`` of ``def resize(image_id, width)`` is ``{"image_id": 7, "width": 3}``),
so a bridged function's payload schema is the one ``@job_type`` derives from the same
signature, and ``GET /job-types/`` shows its fields. A function taking ``*args`` cannot be
bridged (its positional values have no names); ``**kwargs`` merge into the payload.

A job is sent when the caller's transaction commits (``transaction.on_commit``) and never if
it rolls back; its id is chosen here first, so the caller has it at once. The id is also the
idempotency key, so the client's automatic retries of the send make one job.

The bridges register their sources with ``register_source`` below, which keeps its own list
(``job_types_of`` reads it without the worker runtime installed, e.g. ``manage.py
shop_types``) and hands each to the worker runtime's discovery (``draconic_sdk.worker``).
"""

from __future__ import annotations

import inspect
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

from draconic_sdk.jobtypes import JobType

#: Django's priority range (django.tasks: -100..100, larger runs sooner).
MIN_PRIORITY, MAX_PRIORITY = -100, 100
#: The lowest Django priority of each Draconic level, from the most urgent down.
LEVEL_FLOORS = (("critical", 50), ("high", 1), ("normal", -49), ("low", MIN_PRIORITY))

Source = Callable[[ModuleType], list[JobType]]


def level_of(priority: int) -> str:
    """The Draconic level of a Django priority: 50..100 critical, 1..49 high, -49..0 normal
    (0 is Django's default), -100..-50 low. The exact value travels as ``priority_rank``."""
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority must be an integer, not {priority!r}")
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise ValueError(f"priority must be between {MIN_PRIORITY} and {MAX_PRIORITY}")
    return next(level for level, floor in LEVEL_FLOORS if priority >= floor)


def new_job_id() -> str:
    return str(uuid.uuid4())


class PayloadError(TypeError):
    """The call's arguments cannot become a job's payload (they say which and why)."""


def payload_of(
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    skip_first: bool = False,
) -> dict[str, Any]:
    """The payload of calling ``fn(*args, **kwargs)``: each argument under its parameter's
    name. ``skip_first``: the first parameter is not the caller's (a context, ``self``).
    Raises ``PayloadError`` for arguments that do not fit the signature or are not JSON."""
    signature = without_first(fn) if skip_first else inspect.signature(fn)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise PayloadError(f"{_name(fn)}: {exc}") from None
    payload: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            raise PayloadError(f"{_name(fn)}: *{name} cannot be a payload; name the arguments")
        if kind is inspect.Parameter.VAR_KEYWORD:
            payload.update(value)
        else:
            payload[name] = value
    try:
        # As the server will store it: a tuple becomes a list, a non-JSON value is refused.
        return dict(json.loads(json.dumps(payload)))
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"{_name(fn)}: the arguments must be JSON values ({exc})") from None


def without_first(fn: Callable[..., Any]) -> inspect.Signature:
    signature = inspect.signature(fn)
    return signature.replace(parameters=list(signature.parameters.values())[1:])


def payload_function(fn: Callable[..., Any], *, skip_first: bool) -> Callable[..., Any]:
    """A stand-in of ``fn`` whose signature is the payload's (without the first parameter when
    ``skip_first``), for ``jobtypes.schema_from_signature``; calling it calls ``fn``."""
    if not skip_first:
        return fn

    def shown(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    shown.__signature__ = without_first(fn)  # type: ignore[attr-defined]
    shown.__annotations__ = dict(getattr(fn, "__annotations__", {}))
    shown.__wrapped__ = fn  # type: ignore[attr-defined]  # get_type_hints reads fn's globals
    shown.__name__ = getattr(fn, "__name__", "fn")
    shown.__qualname__ = getattr(fn, "__qualname__", shown.__name__)
    shown.__module__ = getattr(fn, "__module__", __name__)
    return shown


def send_on_commit(send: Callable[[], None], *, using: str | None = None) -> None:
    """Run ``send`` once the current transaction of database ``using`` commits (at once
    outside one); never if it rolls back. Without a configured Django, at once."""
    try:
        from django.conf import settings

        configured = settings.configured
    except ImportError:
        configured = False
    if not configured:
        send()
        return
    from django.db import transaction

    transaction.on_commit(send, using=using)


def in_transaction(using: str | None = None) -> bool:
    """Whether a Django transaction is open on ``using`` (False without Django)."""
    try:
        from django.conf import settings
        from django.db import transaction
    except ImportError:
        return False
    return bool(settings.configured and transaction.get_connection(using).in_atomic_block)


def _name(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}"


# --- sources of job types (also handed to draconic_sdk.worker.register_source) -------------

_sources: list[Source] = []


def _register_local(fn: Source) -> Source:
    if fn not in _sources:
        _sources.append(fn)
    return fn


def register_source(fn: Source) -> Source:
    """Register ``fn(module) -> [JobType]`` here and with the worker runtime's discovery
    (``draconic_sdk.worker.register_source``) where the runtime is importable."""
    _register_local(fn)  # job_types_of reads them, with or without the runtime
    try:
        from draconic_sdk import worker  # type: ignore[attr-defined, unused-ignore]
    except ImportError:
        return fn
    worker.register_source(fn)
    return fn


def sources() -> list[Source]:
    """The sources registered here."""
    return list(_sources)


def job_types_of(module: ModuleType) -> list[JobType]:
    """What discovery finds in ``module``: its ``@job_type`` functions and what every
    registered source makes of it (as the runtime's ``discover``, without importing it)."""
    from draconic_sdk.jobtypes import job_types_in

    found = job_types_in(module)
    for source in _sources:
        found += source(module)
    return found
