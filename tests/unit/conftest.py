"""Unit tests: no database, no Redis (they pass with both unreachable; ``.ci/run`` runs them
that way first). A test here that asks for the database is refused at collection."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
DB_FIXTURES = {"db", "transactional_db", "django_db_setup", "django_user_model", "live_server"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not item.path.is_relative_to(HERE):
            continue
        fixtures = set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("django_db") or fixtures & DB_FIXTURES:
            raise pytest.UsageError(
                f"{item.nodeid} uses the database: it belongs in tests/integration"
            )
