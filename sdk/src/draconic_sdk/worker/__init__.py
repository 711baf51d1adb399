"""The worker runtime of an external pool: runs the team's own job types, in the team's own
process and environment, on the pool's Celery queues of Draconic's broker; every state change
goes through Draconic's worker API (``draconic_sdk.worker.api``), never its database.

``discover(modules)`` finds the types: for each module, ``job_types_in(module)`` plus what
every source registered with ``register_source(fn)`` finds in it (``fn(module) ->
list[JobType]``: the django.tasks and Celery bridges register theirs). ``run_worker`` (the
``draconic worker`` command and ``manage.py draconic_worker``) registers the pool and
consumes its queues. Needs the ``worker`` extra (Celery): ``pip install 'draconic-sdk[worker]'``.
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Callable, Iterable

from draconic_sdk.jobtypes import JobType, job_types_in

Source = Callable[[types.ModuleType], list[JobType]]
_sources: list[Source] = []


def register_source(fn: Source) -> Source:
    """Add a finder of job types in a module (usable as a decorator); each once."""
    if fn not in _sources:
        _sources.append(fn)
    return fn


def discover(modules: Iterable[str]) -> list[JobType]:
    """The job types of ``modules`` (imported here), in order, each name once. Two different
    types under one name raise ValueError: the pool could not tell which to run."""
    found: dict[str, JobType] = {}
    for name in modules:
        module = importlib.import_module(name)
        for jt in [*job_types_in(module), *(t for src in _sources for t in src(module))]:
            other = found.get(jt.name)
            if other is not None and other.fn is not jt.fn:
                raise ValueError(f"two job types are named {jt.name!r} (in {name})")
            found[jt.name] = jt
    return list(found.values())


__all__ = ["Source", "discover", "register_source"]
