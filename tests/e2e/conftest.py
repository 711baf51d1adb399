"""End-to-end tests: real worker, scheduler and server processes (``tests.harness``) against
the test database and Redis. Each test starts with an empty Redis database and a fresh
channel layer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Supervisor
from tests.shared_state import _clean_redis, _fresh_channel_layer

__all__ = ["_clean_redis", "_fresh_channel_layer", "platform"]


@pytest.fixture
def platform(transactional_db: None, tmp_path: Path) -> Iterator[Supervisor]:
    """Start real processes with ``platform.start_worker()`` / ``start_scheduler()`` /
    ``start(name, argv)``; every one still running is stopped after the test."""
    supervisor = Supervisor(tmp_path)
    yield supervisor
    supervisor.stop_all()
