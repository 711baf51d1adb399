"""Per-client request rate limits, counted in the shared cache (Redis) so that every API
process enforces the same budget."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


class _FixedWindowMixin:
    """A fixed-window counter (one atomic ``INCR`` per request) instead of DRF's default
    sliding log, which pickles up to ``num_requests`` timestamps on every request: at
    6000/min that is the dominant cost of a small request. The price is that a client may
    burst up to twice the rate across a window boundary.

    The rate is read from settings on every request (DRF binds ``THROTTLE_RATES`` at import,
    so ``override_settings`` would not reach it).
    """

    scope: str
    setting: str
    num_requests: int
    duration: int

    def get_rate(self) -> str:
        return str(getattr(settings, self.setting))

    def allow_request(self, request: Request, view: Any) -> bool:
        self.num_requests, self.duration = self.parse_rate(self.get_rate())  # type: ignore[attr-defined]
        base = self.get_cache_key(request, view)  # type: ignore[attr-defined]
        if base is None:
            return True
        window = int(time.time() // self.duration)
        key = f"{base}:{window}"
        # add() is a no-op when the key exists; the expiry outlives the window a little.
        cache.add(key, 0, timeout=self.duration + 5)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add() and incr()
            cache.add(key, 1, timeout=self.duration + 5)
            count = 1
        return bool(count <= self.num_requests)

    def wait(self) -> float:
        return self.duration - (time.time() % self.duration)


class UserThrottle(_FixedWindowMixin, UserRateThrottle):
    """Authenticated clients, per user: ``DRACONIC_THROTTLE_USER``."""

    setting = "DRACONIC_THROTTLE_USER"


class AnonThrottle(_FixedWindowMixin, AnonRateThrottle):
    """Unauthenticated clients, per IP address: ``DRACONIC_THROTTLE_ANON``."""

    setting = "DRACONIC_THROTTLE_ANON"
