"""What a client is told when PostgreSQL refuses a statement (``jobs.api.errors``): a value it
cannot hold is a 400, a conflict with a concurrent write a 409, anything else a 500; each a
JSON body that says nothing was changed."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, DataError, IntegrityError, ProgrammingError

from jobs.api.errors import exception_handler


@pytest.mark.parametrize(
    ("exc", "code", "words"),
    [
        (DataError("value too long for type character varying(255)"), 400, "does not fit"),
        (IntegrityError("duplicate key value violates unique constraint"), 409, "conflicts"),
        (ProgrammingError("column does not exist"), 500, "failed in the database"),
        (DatabaseError("something else"), 500, "failed in the database"),
    ],
)
def test_a_refused_statement_gets_a_status_that_says_whose_it_was(
    exc: DatabaseError, code: int, words: str
) -> None:
    response = exception_handler(exc, {})
    assert response is not None
    assert response.status_code == code
    assert words in response.data["detail"]
    assert "nothing was changed" in response.data["detail"]
