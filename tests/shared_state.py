"""Fixtures that reset the state tests share through Redis, for the folders whose tests use
Redis (``integration`` and ``e2e``, whose conftests import them). Unit tests run without
them, and without Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobs.redis_client import get_redis


@pytest.fixture(autouse=True)
def _clean_redis() -> Iterator[None]:
    """Every test starts with an empty Redis database (ledger, broker queues, wake-ups)."""
    get_redis().flushdb()
    yield


@pytest.fixture(autouse=True)
def _fresh_channel_layer() -> Iterator[None]:
    """Every test gets its own channel layer. Each WebsocketCommunicator test runs in a new
    event loop, and a consumer abandoned when a test's loop closed can leave the shared
    layer's receive lock held, bound to a dead loop (a server process has one loop)."""
    from channels.layers import channel_layers

    channel_layers.backends = {}
    yield
    channel_layers.backends = {}
