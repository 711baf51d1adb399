"""Remote types: the job types an external worker pool registered (``jobs.pools``).

The server never runs them; it checks a submit's payload against the schema the pool
registered (the same ``validate_payload`` the SDK's ``JobType.validate`` uses) and routes
their jobs to the pool's queues. The registrations live in PostgreSQL (``WorkerPool.types``),
so every API process sees a new type at once: a name not in this process's cache is looked
up again; a cached one is re-read after ``CACHE_SECONDS`` (a schema a pool changed).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from draconic_sdk.jobtypes import validate_payload
from jobs.types.handler import Handler, HandlerError, JobContext

CACHE_SECONDS = 5.0


class RemoteHandler(Handler):
    """A type served by pool ``pool``: validates payloads, never runs here."""

    def __init__(self, description: Mapping[str, Any], pool: str) -> None:
        self.description = dict(description)
        self.pool = pool
        self.schema: dict[str, Any] = dict(description.get("payload_schema") or {})

    def validate_payload(self, payload: Mapping[str, Any]) -> dict[str, str]:
        return validate_payload(self.schema, dict(payload))

    def run(self, ctx: JobContext) -> Any:
        raise HandlerError(
            f"job type {ctx.job.type!r} runs on the worker pool {self.pool!r}, not here",
            permanent=True,
        )


_lock = threading.Lock()
_remote: dict[str, RemoteHandler] = {}
_loaded_at = 0.0


def register_remote(description: Mapping[str, Any], pool: str) -> None:
    """Make a pool's type known to this process (the pool's registration stores it too)."""
    with _lock:
        _remote[str(description["name"])] = RemoteHandler(description, pool)


def remote_handler(name: str) -> RemoteHandler | None:
    """The remote type ``name``, or None if no pool registered it."""
    if time.monotonic() - _loaded_at > CACHE_SECONDS or name not in _remote:
        _load()
    return _remote.get(name)


def remote_types() -> list[str]:
    _load()
    return sorted(_remote)


def _load() -> None:
    global _loaded_at
    from jobs.pools.models import WorkerPool

    fresh = {
        str(t["name"]): RemoteHandler(t, pool.name)
        for pool in WorkerPool.objects.all()
        for t in pool.types
        if isinstance(t, dict) and t.get("name")
    }
    with _lock:
        _remote.clear()
        _remote.update(fresh)
        _loaded_at = time.monotonic()
