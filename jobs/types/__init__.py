"""Job types: the contract a handler implements (``Handler``, ``JobContext``) and the registry
that maps a type's name to its handler. The built-in types live in ``workers/handlers/``."""

from __future__ import annotations

from jobs.types.handler import Handler, HandlerError, JobCancelled, JobContext
from jobs.types.registry import get_handler, register, registered_types

__all__ = [
    "Handler",
    "HandlerError",
    "JobCancelled",
    "JobContext",
    "get_handler",
    "register",
    "registered_types",
]
