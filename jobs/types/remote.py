"""Job types served by an external worker pool: the seam between the registry and the pools.

An external pool registers its types with their descriptions (``JobType.describe()``: name,
description, payload_schema, defaults, retry). The server never runs them, but validates a
submit of one against its registered schema, applies its defaults, computes its retry backoff
and lists it in ``/job-types/`` with its pool. Two ways in, both read-only for the registry:

- ``register_remote(description, pool)``: this process knows the type (tests, a process that
  just received a registration);
- ``add_remote_source(fn)``: ``fn(name)`` answers the ``RemoteType``s of that name (an empty
  iterable if none) and ``fn(None)`` all of them, from wherever registrations are stored. A
  source is asked on every lookup of a name that is not a local type, so it must be cheap.
  The default source, ``worker_pool_types``, reads the ``types`` JSON list (one
  ``JobType.describe()`` per type) of the ``jobs.WorkerPool`` rows the pools app stores, so
  every api process sees the same pools; a row's ``served`` attribute (a field or a property,
  when the model has one) says whether a live worker of the pool serves its types.

A name registered locally (a module, an entry point) always wins over a remote one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from django.apps import apps

from draconic_sdk.jobtypes import Defaults, RetryPolicy, validate_payload
from jobs.types.defaults import defaults_problems
from jobs.types.handler import Handler, HandlerError, JobContext


@dataclass(frozen=True)
class RemoteType:
    """A type an external pool serves, as it registered it. ``served``: a live worker of the
    pool serves it now."""

    description: Mapping[str, Any]
    pool: str
    served: bool = True

    @property
    def name(self) -> str:
        return str(self.description["name"])


#: ``fn(name)`` -> the types of that name; ``fn(None)`` -> every type the source knows.
RemoteSource = Callable[[str | None], Iterable[RemoteType]]

#: The pools app's model of registered pools (by name: it may not exist yet).
WORKER_POOL_MODEL = "jobs.WorkerPool"

_registered: dict[str, RemoteType] = {}
_sources: list[RemoteSource] = []


class RemoteHandler(Handler):
    """A remote type seen from the server: validation and policies, no ``run`` here."""

    remote: ClassVar[RemoteType]

    def validate_payload(self, payload: Mapping[str, Any]) -> dict[str, str]:
        return validate_payload(self.payload_schema or {"type": "object"}, dict(payload))

    def run(self, ctx: JobContext) -> Any:
        raise HandlerError(
            f"job type {self.type_name!r} is served by the pool {self.pool!r}, "
            "not by the built-in workers"
        )

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {**super().describe(), "description": cls.remote.description.get("description", "")}


def register_remote(description: Mapping[str, Any], pool: str, *, served: bool = True) -> None:
    """Make the type ``description`` (``JobType.describe()``) known as served by ``pool``.
    Raises ValueError for a description the server cannot use (no name, no object schema,
    defaults or retry outside the bounds)."""
    remote = RemoteType(description=dict(description), pool=pool, served=served)
    remote_handler_class(remote)  # checks it
    _registered[remote.name] = remote


def unregister_remote(name: str) -> None:
    _registered.pop(name, None)


def add_remote_source(source: RemoteSource) -> None:
    if source not in _sources:
        _sources.append(source)


def remote_type(name: str) -> RemoteType | None:
    """The remote type ``name``, from this process's registrations or a source."""
    if name in _registered:
        return _registered[name]
    for source in _sources:
        for found in source(name):
            return found
    return None


def remote_types() -> list[RemoteType]:
    """Every remote type known, by name (a registration here wins over a source's)."""
    found: dict[str, RemoteType] = {}
    for source in _sources:
        for remote in source(None):
            found.setdefault(remote.name, remote)
    merged = {**found, **_registered}
    return [merged[name] for name in sorted(merged)]


def worker_pool_types(name: str | None) -> list[RemoteType]:
    """The default source: the types the ``jobs.WorkerPool`` rows list (none while that
    model does not exist)."""
    try:
        model = apps.get_model(WORKER_POOL_MODEL)
    except LookupError:
        return []
    rows = model.objects.all()
    if name is not None:  # jsonb containment: the pools whose list holds a type of that name
        rows = rows.filter(types__contains=[{"name": name}])
    found = []
    for pool in rows.order_by("name"):
        served = bool(getattr(pool, "served", True))
        for description in pool.types or []:
            if isinstance(description, dict) and name in (None, description.get("name")):
                found.append(RemoteType(description, pool=pool.name, served=served))
    return found


def remote_handler_class(remote: RemoteType) -> type[Handler]:
    """The handler class of a remote type. Raises ValueError if its description is unusable."""
    description = remote.description
    name, schema = description.get("name"), description.get("payload_schema") or {"type": "object"}
    if not isinstance(name, str) or not name or len(name) > 255:
        raise ValueError("a remote job type needs a name of 1 to 255 characters")
    if not isinstance(schema, dict) or schema.get("type", "object") != "object":
        raise ValueError(f"job type {name!r}: payload_schema must be a JSON Schema of an object")
    try:
        defaults = Defaults(**(description.get("defaults") or {}))
        retry = _retry(description.get("retry"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"job type {name!r}: {exc}") from exc
    problems = defaults_problems(defaults.describe())
    if problems:
        raise ValueError(f"job type {name!r}: " + "; ".join(problems))
    attributes = {
        "type_name": name,
        "remote": remote,
        "payload_schema": schema,
        "defaults": defaults,
        "retry": retry,
        "pool": remote.pool,
    }
    return type(f"Remote[{name}]", (RemoteHandler,), attributes)


def _retry(described: Mapping[str, Any] | None) -> RetryPolicy | None:
    """The backoff of a described retry policy; ``retry_on``/``give_up_on`` name exception
    classes of the pool's code, which only the pool's runtime can apply."""
    if not described:
        return None
    default = RetryPolicy()
    return RetryPolicy(
        base_seconds=float(described.get("base_seconds", default.base_seconds)),
        cap_seconds=float(described.get("cap_seconds", default.cap_seconds)),
        jitter=float(described.get("jitter", default.jitter)),
    )


add_remote_source(worker_pool_types)
