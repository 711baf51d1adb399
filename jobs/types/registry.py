"""The job-type registry: ``@register("name")`` maps a job type to a handler class.

The built-in types register themselves when the ``workers`` app is ready (see
``workers.apps``), and so do a deployment's own modules, listed in the setting
``DRACONIC_HANDLER_MODULES``: every process (api, worker, scheduler, ``manage.py`` commands)
imports them at start-up, and one that cannot be imported stops the process with
``ImproperlyConfigured`` naming the module, the error and ``sys.path``. A process that ran
without a configured module would accept its jobs in one place and fail them in another; a
lazy import on first use made every submit answer 500 instead. ``missing_modules()`` lets
the health check say so if a module is somehow absent all the same. Diagnostic types
(``noop``, ``fail``) are offered only when ``DRACONIC_DIAGNOSTIC_TYPES`` is on.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from jobs.types.handler import Handler

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


def load_modules(modules: Iterable[str]) -> None:
    """Import each of a deployment's job-type modules, which register their types.

    Raises ``ImproperlyConfigured`` for the first one that cannot be imported (or raises while
    it is), naming it, the error and the ``sys.path`` Python searched."""
    for module in modules:
        if module in _loaded_modules:
            continue
        try:
            importlib.import_module(module)
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


def get_handler(name: str) -> Handler | None:
    """A fresh handler of type ``name``, or None if no such type may run here. A type an
    external pool registered answers with its ``RemoteHandler`` (it validates payloads;
    the pool runs it)."""
    cls = _registry.get(name)
    if cls is None:
        from jobs.types.remote import remote_handler

        return remote_handler(name)
    if cls.diagnostic and not settings.DRACONIC_DIAGNOSTIC_TYPES:
        return None
    return cls()


def is_local(name: str) -> bool:
    """True for a type built into this deployment (a Handler class registered here)."""
    return name in _registry
