"""Token authentication with a short in-process cache of token -> user."""

from __future__ import annotations

import threading
import time
from typing import Any

from django.conf import settings
from rest_framework.authentication import TokenAuthentication


class CachedTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, remembering each valid token for
    ``DRACONIC_TOKEN_CACHE_SECONDS`` (0 turns the cache off).

    The lookup is a PostgreSQL round trip on every request, about a sixth of a small
    submit's time (docs/performance.md). The price: a deleted token or a deactivated user
    keeps working in an API process for at most that many seconds. Only successful look-ups
    are cached, so a wrong token never is.
    """

    _cache: dict[str, tuple[float, Any, Any]] = {}
    _lock = threading.Lock()
    MAX_ENTRIES = 10_000

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        ttl = settings.DRACONIC_TOKEN_CACHE_SECONDS
        if ttl <= 0:
            return super().authenticate_credentials(key)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        user, token = super().authenticate_credentials(key)
        with self._lock:
            if len(self._cache) >= self.MAX_ENTRIES:
                self._cache.clear()
            self._cache[key] = (now + ttl, user, token)
        return user, token

    @classmethod
    def forget(cls) -> None:
        """Drop every cached token (tests; or after revoking tokens in this process)."""
        with cls._lock:
            cls._cache.clear()
