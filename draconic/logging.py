"""Structured logs: one JSON object per line, from every process (api, worker, scheduler).

Every line carries ``ts`` (ISO 8601, UTC, milliseconds), ``level``, ``logger``, ``message``,
``process`` (the role of the process: api, worker, scheduler, ...) and ``pid``. The fields a
caller passes in ``extra`` are added as they are: ``job_id``, ``attempt`` and ``transition``
(``jobs.live.events`` passes them for every state change) and any other; a value that JSON cannot
represent is written as its ``str()``. An exception adds ``exc`` (the formatted traceback).

Wired in ``settings.LOGGING``; Celery workers use the same configuration because
``install_celery_logging`` tells Celery not to set up logging of its own.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

#: Attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}


def process_role(argv: Sequence[str] | None = None) -> str:
    """The role of this process, for the ``process`` field.

    ``DRACONIC_PROCESS`` wins when set; otherwise it is read from the command line:
    ``celery ... worker`` -> worker, ``celery ... beat`` and ``manage.py scheduler`` ->
    scheduler, another ``manage.py`` command -> its name, pytest -> test, anything else (daphne,
    gunicorn, uvicorn) -> api.
    """
    role = os.environ.get("DRACONIC_PROCESS", "").strip()
    if role:
        return role
    args = list(sys.argv if argv is None else argv)
    program = os.path.basename(args[0]) if args else ""
    if "celery" in program or (args and "celery" in args[0]):
        for name, found in (("worker", "worker"), ("beat", "scheduler"), ("flower", "flower")):
            if name in args:
                return found
        return "celery"
    if program == "manage.py" and len(args) > 1:
        return {"scheduler": "scheduler", "runserver": "api"}.get(args[1], args[1])
    if "pytest" in program or "py.test" in program:
        return "test"
    return "api"


def _jsonable(value: Any) -> Any:
    """``value`` if ``json.dumps`` takes it, else its ``str()``."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON (no newline inside: tracebacks are escaped)."""

    def __init__(self, *args: Any, process: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.process = process or process_role()

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": self.process,
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_") and key not in line:
                line[key] = _jsonable(value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def install_celery_logging() -> None:
    """Make Celery keep Django's ``LOGGING`` (JSON lines) instead of its own text format.

    Connecting any receiver to ``setup_logging`` stops Celery from configuring logging (and
    from adding its text handlers to ``celery.task``); the receiver applies ``LOGGING`` again
    so a worker started before ``django.setup()`` gets it too.
    """
    from celery.signals import setup_logging

    setup_logging.connect(_configure_from_settings, weak=False, dispatch_uid="draconic-json-logs")


def _configure_from_settings(**_: Any) -> None:
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
