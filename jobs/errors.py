"""Errors that services raise and the API turns into 4xx responses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ServiceError(Exception):
    """``errors`` maps a field (or ``detail``) to its messages; ``extra`` holds values the
    answer carries as they are, beside the messages (the first job's ``job_id``)."""

    status_code = 400

    def __init__(
        self,
        errors: Mapping[str, str | list[str]] | str,
        *,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(errors, str):
            errors = {"detail": errors}
        self.errors = {k: v if isinstance(v, list) else [v] for k, v in errors.items()}
        self.extra = dict(extra or {})
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in self.errors.items()))


class JobValidationError(ServiceError):
    """The request names something that cannot be: 400, nothing stored."""


class JobConflict(ServiceError):
    """The job is not in a state that allows this: 409, nothing changed."""

    status_code = 409


class IdempotencyConflict(JobConflict):
    """The idempotency key was already used by this owner for a different request: 409 naming
    ``idempotency_key``, with the first job's id."""

    def __init__(self, *, key: str, job_id: str, differing: list[str]) -> None:
        super().__init__(
            {
                "idempotency_key": (
                    f"{key!r} was already used for job {job_id} with a different request"
                    f" (differing: {', '.join(differing)}); send that request again to get that"
                    " job, or use a new key for a new job"
                )
            },
            extra={"job_id": job_id},
        )
