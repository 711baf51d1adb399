"""PostgreSQL unreachable: the API answers 503 with a clear JSON message, never a stack trace,
and the health check names PostgreSQL as the failing part."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection

from draconic.authentication import CachedTokenAuthentication
from tests.harness import free_port


@contextmanager
def database_unreachable() -> Iterator[None]:
    """Point this process's connection at a port where nothing listens, then restore it."""
    dead_port = free_port()
    original = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = str(dead_port)
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["PORT"] = original


@pytest.fixture
def dead_database(transactional_db: None) -> Iterator[None]:
    with database_unreachable():
        yield


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/jobs/", None),
        ("post", "/jobs/", {"type": "noop"}),
        ("get", "/jobs/00000000-0000-0000-0000-000000000000", None),
    ],
)
def test_the_api_answers_503_while_postgres_is_down(
    api: Any, dead_database: None, method: str, path: str, body: Any
) -> None:
    response = (
        getattr(api, method)(path, body, format="json") if body else getattr(api, method)(path)
    )
    assert response.status_code == 503
    assert response["Content-Type"].startswith("application/json")
    detail = response.json()["detail"]
    assert "database is unavailable" in detail
    assert "Traceback" not in response.content.decode()
    assert response["Retry-After"]


@pytest.mark.django_db(transaction=True)
def test_health_names_postgres_when_it_is_unreachable(staff_api: Any, settings: Any) -> None:
    # A running API process knows its staff's tokens already (the token cache): only the
    # health check itself needs PostgreSQL.
    settings.DRACONIC_TOKEN_CACHE_SECONDS = 60
    CachedTokenAuthentication.forget()
    try:
        assert staff_api.get("/admin/health").status_code in (200, 503)  # caches the token
        with database_unreachable():
            response = staff_api.get("/admin/health")
    finally:
        CachedTokenAuthentication.forget()
    assert response.status_code == 503
    body = response.json()
    assert "postgres" in body["failing"]
    assert body["checks"]["postgres"]["ok"] is False
