"""Per-client request rate limits, counted in the shared cache (Redis) so that every API
process enforces the same budget."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from jobs.redis_client import get_redis, key


class _FixedWindowMixin:
    """A fixed-window counter (one pipelined ``INCR`` + ``EXPIRE NX`` per request, straight on
    Redis rather than through Django's cache, which needs two round trips) instead of DRF's default
    sliding log, which pickles up to ``num_requests`` timestamps on every request: at
    6000/min that is the dominant cost of a small request. The price is that a client may
    burst up to twice the rate across a window boundary.

    The rate is read from settings on every request (DRF binds ``THROTTLE_RATES`` at import,
    so ``override_settings`` would not reach it).
    """

    scope: str | None
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
        # One round trip: count this request and make sure the window's key expires.
        pipe = get_redis().pipeline(transaction=False)
        pipe.incr(key("throttle", base, str(window)))
        pipe.expire(key("throttle", base, str(window)), self.duration + 5, nx=True)
        count, _ = pipe.execute()
        return bool(count <= self.num_requests)

    def wait(self) -> float:
        return self.duration - (time.time() % self.duration)


class UserThrottle(_FixedWindowMixin, UserRateThrottle):
    """Authenticated clients, per user: ``DRACONIC_THROTTLE_USER``."""

    setting = "DRACONIC_THROTTLE_USER"


class AnonThrottle(_FixedWindowMixin, AnonRateThrottle):
    """Unauthenticated clients, per IP address: ``DRACONIC_THROTTLE_ANON``."""

    setting = "DRACONIC_THROTTLE_ANON"
