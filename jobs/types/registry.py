"""The job-type registry: ``@register("name")`` maps a job type to a handler class, and
``register_job_type`` does the same for a ``draconic_sdk.job_type`` function (as a
``FunctionHandler`` class, ``jobs.types.functions``); a name that is not local may be a type
an external pool serves (``jobs.types.remote``).

The built-in types register themselves when the ``workers`` app is ready (see
``workers.apps``), and so do a deployment's own modules, listed in the setting
``DRACONIC_HANDLER_MODULES``: every process (api, worker, scheduler, ``manage.py`` commands)
imports them at start-up, and one that cannot be imported stops the process with
``ImproperlyConfigured`` naming the module, the error and ``sys.path``. A process that ran
without a configured module would accept its jobs in one place and fail them in another; a
lazy import on first use made every submit answer 500 instead. ``missing_modules()`` lets
the health check say so if a module is somehow absent all the same. Diagnostic types
(``noop``, ``fail``) are offered only when ``DRACONIC_DIAGNOSTIC_TYPES`` is on. A module
registers its types by decorating ``Handler`` classes with ``@register`` or by defining
``@job_type`` functions at its top level; installed packages add theirs through entry points
(``jobs.types.entrypoints``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from draconic_sdk.jobtypes import JobType, job_types_in
from jobs.types.functions import handler_class_for
from jobs.types.handler import Handler
from jobs.types.remote import remote_handler_class, remote_type, remote_types

_registry: dict[str, type[Handler]] = {}
#: Deployment modules imported by ``load_modules``, in order.
_loaded_modules: list[str] = []


def register(name: str, *, diagnostic: bool = False) -> Callable[[type[Handler]], type[Handler]]:
    def decorator(cls: type[Handler]) -> type[Handler]:
        existing = _registry.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(f"job type {name!r} is already registered to {existing.__name__}")
        cls.type_name = name
        cls.diagnostic = diagnostic
        _registry[name] = cls
        return cls

    return decorator


def unregister(name: str) -> None:
    """Forget the local type ``name`` (tests; a process's types are otherwise fixed)."""
    _registry.pop(name, None)


def register_job_type(job_type: JobType) -> type[Handler]:
    """Register a ``@job_type`` function under its name (again: no-op). Raises ValueError
    when the name is taken by another type or its defaults are out of bounds."""
    existing = _registry.get(job_type.name)
    if existing is not None and getattr(existing, "job_type", None) is job_type:
        return existing
    cls = handler_class_for(job_type)
    return register(job_type.name)(cls)


def register_module_types(module: ModuleType) -> list[str]:
    """Register the ``@job_type`` functions ``module`` defines at its top level (its
    ``@register`` classes registered themselves on import); their names."""
    return [register_job_type(job_type).type_name for job_type in job_types_in(module)]


def register_object(obj: Any, *, name: str = "") -> list[str]:
    """Register what an entry point names: a module, a JobType or a Handler class (under
    ``name`` if it was not registered yet). Raises TypeError for anything else."""
    if isinstance(obj, ModuleType):
        return register_module_types(obj)
    if isinstance(obj, JobType):
        return [register_job_type(obj).type_name]
    if isinstance(obj, type) and issubclass(obj, Handler):
        if not obj.type_name:
            register(name)(obj)
        return [obj.type_name]
    raise TypeError(
        f"{obj!r} is not a module, a draconic_sdk JobType or a jobs.types.Handler class"
    )


def load_modules(modules: Iterable[str]) -> None:
    """Import each of a deployment's job-type modules, which register their types.

    Raises ``ImproperlyConfigured`` for the first one that cannot be imported (or raises while
    it is), naming it, the error and the ``sys.path`` Python searched."""
    for module in modules:
        if module in _loaded_modules:
            continue
        try:
            register_module_types(importlib.import_module(module))
        except Exception as exc:
            raise ImproperlyConfigured(_load_error(module, exc)) from exc
        _loaded_modules.append(module)


def _load_error(module: str, exc: Exception) -> str:
    searched = "\n".join(f"    {entry or '(the current directory)'}" for entry in sys.path)
    return (
        f"DRACONIC_HANDLER_MODULES lists {module!r}, which cannot be loaded: "
        f"{type(exc).__name__}: {exc}\n"
        f"  Python looked for it in sys.path:\n{searched}\n"
        "  Make it importable in every process (api, worker, scheduler): add the directory "
        "that holds it to PYTHONPATH, or install its package into this environment; "
        "or remove it from DRACONIC_HANDLER_MODULES."
    )


def loaded_modules() -> list[str]:
    """The deployment modules this process has loaded, in order."""
    return list(_loaded_modules)


def missing_modules() -> list[str]:
    """The modules ``DRACONIC_HANDLER_MODULES`` lists that this process has not loaded."""
    return [m for m in settings.DRACONIC_HANDLER_MODULES if m not in _loaded_modules]


def registered_types() -> list[str]:
    """The job types a client may submit, sorted."""
    return sorted(
        name
        for name, cls in _registry.items()
        if settings.DRACONIC_DIAGNOSTIC_TYPES or not cls.diagnostic
    )


def handler_class(name: str) -> type[Handler] | None:
    """The handler class of type ``name`` (a local type, else a remote one), or None if no
    such type may be submitted here."""
    cls = _registry.get(name)
    if cls is not None:
        return None if cls.diagnostic and not settings.DRACONIC_DIAGNOSTIC_TYPES else cls
    remote = remote_type(name)
    if remote is None:
        return None
    try:
        return remote_handler_class(remote)
    except ValueError:  # refused at registration; a stored one that went bad is unknown
        return None


def get_handler(name: str) -> Handler | None:
    """A fresh handler of type ``name``, or None if no such type may be submitted here."""
    cls = handler_class(name)
    return None if cls is None else cls()


def describe_types(*, local_only: bool = False) -> list[dict[str, Any]]:
    """Every type a client may submit, local and remote (the pools' are read from the
    database), as ``/job-types/`` lists it (without ``served``), by name."""
    described = {name: _registry[name].describe() for name in registered_types()}
    for remote in [] if local_only else remote_types():
        if remote.name in described:
            continue
        try:  # from the registration in hand: no look-up of each name again
            cls = remote_handler_class(remote)
        except ValueError:  # refused at registration; a stored one that went bad is unknown
            continue
        described[remote.name] = {**cls.describe(), "served": remote.served}
    return [described[name] for name in sorted(described)]


def is_local(name: str) -> bool:
    """True for a type of this deployment (a module's or an entry point's), not a pool's."""
    return name in _registry
