"""Integration tests: PostgreSQL and Redis, no worker processes. Each test starts with an
empty Redis database and a fresh channel layer."""

from __future__ import annotations

from tests.shared_state import _clean_redis, _fresh_channel_layer

__all__ = ["_clean_redis", "_fresh_channel_layer"]
