"""The job-type registry: ``@register("name")`` maps a job type to a handler class.

The built-in types register themselves when the ``workers`` app is ready (see
``workers.apps``); a deployment adds its own modules with the setting
``DRACONIC_HANDLER_MODULES``, imported on first use. Diagnostic types (``noop``, ``fail``) are
offered only when ``DRACONIC_DIAGNOSTIC_TYPES`` is on.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable

from django.conf import settings

from jobs.types.handler import Handler

_registry: dict[str, type[Handler]] = {}
_loaded = False
_lock = threading.Lock()


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


def _load_deployment_modules() -> None:
    global _loaded
    if _loaded:
        return
    with _lock:
        if not _loaded:
            for module in settings.DRACONIC_HANDLER_MODULES:
                importlib.import_module(module)
            _loaded = True


def registered_types() -> list[str]:
    """The job types a client may submit, sorted."""
    _load_deployment_modules()
    return sorted(
        name
        for name, cls in _registry.items()
        if settings.DRACONIC_DIAGNOSTIC_TYPES or not cls.diagnostic
    )


def get_handler(name: str) -> Handler | None:
    """A fresh handler of type ``name``, or None if no such type may run here."""
    _load_deployment_modules()
    cls = _registry.get(name)
    if cls is None or (cls.diagnostic and not settings.DRACONIC_DIAGNOSTIC_TYPES):
        return None
    return cls()
