"""The ``draconic`` command's exit codes, and an error message that says what to do next."""

from __future__ import annotations

import json
from typing import Any

from draconic_sdk.config import HOW_TO_AUTHENTICATE
from draconic_sdk.errors import (
    AuthenticationError,
    Conflict,
    DraconicError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerUnavailable,
    Timeout,
    ValidationError,
)

OK = 0
#: A job that was waited for failed or was cancelled (or health found a failing check).
JOB_FAILED = 1
USAGE = 2  # click's own, for a bad option
INVALID = 3
AUTH = 4
NOT_FOUND = 5
CONFLICT = 6
UNAVAILABLE = 7
TIMED_OUT = 8

_CODES: list[tuple[type[DraconicError], int, str]] = [
    (ValidationError, INVALID, "fix the fields named above and run the command again"),
    (AuthenticationError, AUTH, HOW_TO_AUTHENTICATE),
    (
        PermissionDenied,
        AUTH,
        "this needs a staff user's token: `python manage.py createapitoken NAME --staff`",
    ),
    (
        NotFound,
        NOT_FOUND,
        "check the id: `draconic ls` lists your jobs (`schedules ls`, `limits ls` the others)",
    ),
    (Conflict, CONFLICT, "`draconic get ID` shows the job's current state"),
    (RateLimited, UNAVAILABLE, "too many requests; wait the seconds named and run it again"),
    (ServerUnavailable, UNAVAILABLE, "start the platform (`make run`) or point DRACONIC_URL at it"),
    (Timeout, TIMED_OUT, "the jobs go on running; `draconic get ID` shows them later"),
]


def exit_code(error: DraconicError) -> int:
    for kind, code, _ in _CODES:
        if isinstance(error, kind):
            return code
    return UNAVAILABLE if error.status >= 500 else INVALID


def hint(error: DraconicError) -> str:
    for kind, _, text in _CODES:
        if isinstance(error, kind):
            if isinstance(error, AuthenticationError) and HOW_TO_AUTHENTICATE in error.message:
                return ""  # the message already says it
            return text
    return ""


def as_json(error: DraconicError) -> str:
    body: dict[str, Any] = {
        "error": type(error).__name__,
        "status": error.status,
        "message": error.message,
    }
    if isinstance(error, ValidationError):
        body["errors"] = error.errors
    if isinstance(error, ServerUnavailable):
        body["url"] = error.url
    if isinstance(error, RateLimited):
        body["retry_after"] = error.retry_after
    return json.dumps(body)
