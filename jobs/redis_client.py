"""One Redis client per process for the ledger and the dispatcher's wake-ups."""

from __future__ import annotations

import functools

import redis
from django.conf import settings


@functools.cache
def get_redis() -> redis.Redis:
    # redis-py's pool notices a fork and reconnects in the child, so caching is safe.
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30
    )


def key(*parts: str) -> str:
    return ":".join((settings.DRACONIC_REDIS_PREFIX, *parts))
