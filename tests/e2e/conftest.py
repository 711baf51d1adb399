"""End-to-end tests: real worker, scheduler and server processes (``tests.harness``) against
the test database and Redis. Each test starts with an empty Redis database and a fresh
channel layer.

With ``DRACONIC_TEST_PGBOUNCER=1`` the processes reach the test database through a PgBouncer
in transaction mode (``tests/pgbouncer.py``) started for the session; the tests' own
database access (pytest-django's) stays direct."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Supervisor, route_database
from tests.pgbouncer import PgBouncer
from tests.shared_state import _clean_redis, _fresh_channel_layer

__all__ = ["_clean_redis", "_fresh_channel_layer", "pgbouncer", "platform"]

THROUGH_PGBOUNCER = os.environ.get("DRACONIC_TEST_PGBOUNCER", "") not in ("", "0", "false")


@pytest.fixture(scope="session")
def pgbouncer(django_db_setup: None) -> Iterator[PgBouncer | None]:
    """The session's PgBouncer when ``DRACONIC_TEST_PGBOUNCER`` is set, else None. It stops
    before the test database is dropped (it holds server connections to it)."""
    if not THROUGH_PGBOUNCER:
        yield None
        return
    from django.db import connection

    bouncer = PgBouncer(
        pg_host=connection.settings_dict["HOST"] or "127.0.0.1",
        pg_port=int(connection.settings_dict["PORT"] or 5432),
    )
    route_database(("127.0.0.1", bouncer.start()))
    try:
        # The processes find themselves pooled by this difference, and send no PREPARE.
        assert bouncer.server_port(connection.settings_dict["NAME"]) != bouncer.port
        yield bouncer
    finally:
        route_database(None)
        bouncer.stop()


@pytest.fixture
def platform(
    transactional_db: None, tmp_path: Path, pgbouncer: PgBouncer | None
) -> Iterator[Supervisor]:
    """Start real processes with ``platform.start_worker()`` / ``start_scheduler()`` /
    ``start(name, argv)``; every one still running is stopped after the test."""
    supervisor = Supervisor(tmp_path)
    yield supervisor
    supervisor.stop_all()
