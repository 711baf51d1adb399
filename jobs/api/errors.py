"""One exception handler for the API: every error is JSON, bad input is 4xx, never a 500."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import redis
from django.db import DatabaseError, DataError, IntegrityError, InterfaceError, OperationalError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from jobs.engine.transitions import InvalidTransition
from jobs.errors import ServiceError

logger = logging.getLogger("draconic.api")

#: What a client waits before retrying when PostgreSQL or Redis is down.
RETRY_AFTER_SECONDS = "5"
#: A request that needed Redis (the ledger, the broker, the channel layer) while it was down.
REDIS_UNAVAILABLE = (
    "Redis is unavailable, and this request needs it; retry in a moment. "
    "Jobs already stored are safe in PostgreSQL."
)

_PATH_PART = re.compile(r"[^.\[\]]+")


def nest_errors(errors: Mapping[str, list[str]]) -> dict[str, Any]:
    """Services name fields by path (``jobs[0].depends_on``); answer in DRF's nested shape
    (``{"jobs": {"0": {"depends_on": [...]}}}``) so a client reads every 400 the same way.
    A key that would collide with another stays flat."""
    nested: dict[str, Any] = {}
    for key, messages in errors.items():
        parts = _PATH_PART.findall(key) or [key]
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        if isinstance(node, dict) and parts[-1] not in node:
            node[parts[-1]] = messages
        else:
            nested[key] = messages
    return nested


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ServiceError):
        if set(exc.errors) == {"detail"}:
            # Same shape as DRF's own 404/401/409 bodies: {"detail": "one message"}.
            return Response({"detail": " ".join(exc.errors["detail"])}, status=exc.status_code)
        return Response({**nest_errors(exc.errors), **exc.extra}, status=exc.status_code)
    if isinstance(exc, InvalidTransition):
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.error("database unavailable: %s", exc)
        return Response(
            {"detail": "The database is unavailable; nothing was changed. Retry in a moment."},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    if isinstance(exc, redis.RedisError):
        logger.error("redis unavailable: %s", exc)
        return Response(
            {"detail": REDIS_UNAVAILABLE},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    response = drf_exception_handler(exc, context)
    if response is None and isinstance(exc, DatabaseError):
        return database_error(exc)
    return response


#: SQLSTATEs of an integrity error another write caused (a unique key or a row it refers to
#: taken or removed meanwhile): a 409. Any other (CHECK, NOT NULL) is the request's: a 400.
#: An error without one (raised by our code) counts as a conflict.
CONFLICTS = {"23505", "23503", "23P01", None}


def _sqlstate(exc: DatabaseError) -> str | None:
    return getattr(exc.__cause__, "pgcode", None)


def database_error(exc: DatabaseError) -> Response:
    """A statement PostgreSQL refused, its transaction rolled back: a value it cannot hold or
    a rule it breaks is the client's (400), a key another request took meanwhile a conflict
    (409), anything else ours (500, logged with its traceback)."""
    if isinstance(exc, DataError):
        logger.warning("database refused a value: %s", exc)
        detail = (
            "A value in the request does not fit what the database stores (too long, out of "
            "range, or a character it cannot hold); nothing was changed."
        )
        return Response({"detail": detail}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, IntegrityError) and _sqlstate(exc) not in CONFLICTS:
        logger.warning("request breaks a rule of the stored data: %s", exc)
        detail = (
            "A value in the request breaks a rule of the stored data (a required value "
            "missing, or one out of its allowed range); nothing was changed."
        )
        return Response({"detail": detail}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, IntegrityError):
        logger.warning("request conflicts with stored data: %s", exc)
        detail = (
            "The request conflicts with data stored meanwhile; nothing was changed. "
            "Read the current state and retry."
        )
        return Response({"detail": detail}, status=status.HTTP_409_CONFLICT)
    logger.exception("database error")
    detail = "The request failed in the database; nothing was changed. Retry, or report it."
    return Response({"detail": detail}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
