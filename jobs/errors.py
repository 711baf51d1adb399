"""Errors that services raise and the API turns into 4xx responses."""

from __future__ import annotations

from collections.abc import Mapping


class ServiceError(Exception):
    status_code = 400

    def __init__(self, errors: Mapping[str, str | list[str]] | str) -> None:
        if isinstance(errors, str):
            errors = {"detail": errors}
        self.errors = {k: v if isinstance(v, list) else [v] for k, v in errors.items()}
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in self.errors.items()))


class JobValidationError(ServiceError):
    """The request names something that cannot be: 400, nothing stored."""


class JobConflict(ServiceError):
    """The job is not in a state that allows this: 409, nothing changed."""

    status_code = 409
