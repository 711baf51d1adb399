"""The built-in job types, one module each. They register with ``jobs.types`` when imported;
``workers.apps`` imports them when Django starts, in every process."""

from __future__ import annotations

import importlib

BUILTIN_MODULES = (
    "workers.handlers.send_email",
    "workers.handlers.data_export",
    "workers.handlers.data_processing",
    "workers.handlers.report_generation",
    "workers.handlers.diagnostic",
)


def load_builtin_types() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
