"""The status a client gets for an integrity error PostgreSQL really raised: a broken CHECK
(the request's values) is a 400, a unique key taken meanwhile a 409."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from jobs.api.errors import exception_handler


def _raised(sql: str) -> IntegrityError:
    with pytest.raises(IntegrityError) as caught, transaction.atomic(), connection.cursor() as cur:
        cur.execute("CREATE TEMPORARY TABLE t (k int UNIQUE, n int CHECK (n > 0))")
        cur.execute("INSERT INTO t VALUES (1, 1)")
        cur.execute(sql)
    return caught.value


@pytest.mark.django_db
def test_a_broken_check_is_the_requests_400() -> None:
    response = exception_handler(_raised("INSERT INTO t VALUES (2, 0)"), {})
    assert response is not None
    assert response.status_code == 400
    assert "breaks a rule" in response.data["detail"]


@pytest.mark.django_db
def test_a_unique_key_taken_is_a_409() -> None:
    response = exception_handler(_raised("INSERT INTO t VALUES (1, 5)"), {})
    assert response is not None
    assert response.status_code == 409
    assert "conflicts" in response.data["detail"]
