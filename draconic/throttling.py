"""Per-client request rate limits, counted in the shared cache (Redis) so that every API
process enforces the same budget.

While Redis is unreachable the limits are off (fail open): a rate limit guards the service,
and refusing every request to guard it would be the outage it guards against; reads that need
only PostgreSQL keep working. The first failure is logged as a warning, and for
``OUTAGE_RETRY_SECONDS`` after it requests pass without trying Redis, so an outage costs
neither a connection attempt per request (up to the client's 5 s timeout when the host is
gone) nor a log line per request. The next try after that turns the limits back on, or
warns again.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from jobs.redis_client import get_redis, key

logger = logging.getLogger("draconic.throttling")

#: After Redis fails, how long requests pass unlimited before Redis is tried again.
OUTAGE_RETRY_SECONDS = 5.0
#: The clock of the outage window (tests replace it).
_clock = time.monotonic


class _Outage:
    """This process's view of Redis for the rate limits: off until ``until`` (its clock)."""

    until = 0.0

    @classmethod
    def active(cls) -> bool:
        return _clock() < cls.until

    @classmethod
    def begin(cls, exc: redis.RedisError) -> None:
        cls.until = _clock() + OUTAGE_RETRY_SECONDS
        logger.warning(
            "Redis is unreachable; rate limits are off for %.0f s: %s", OUTAGE_RETRY_SECONDS, exc
        )


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
        if base is None or _Outage.active():
            return True
        window = int(time.time() // self.duration)
        # One round trip: count this request and make sure the window's key expires.
        pipe = get_redis().pipeline(transaction=False)
        pipe.incr(key("throttle", base, str(window)))
        pipe.expire(key("throttle", base, str(window)), self.duration + 5, nx=True)
        try:
            count, _ = pipe.execute()
        except redis.RedisError as exc:
            _Outage.begin(exc)
            return True
        return bool(count <= self.num_requests)

    def wait(self) -> float:
        return self.duration - (time.time() % self.duration)


class UserThrottle(_FixedWindowMixin, UserRateThrottle):
    """Authenticated clients, per user: ``DRACONIC_THROTTLE_USER``."""

    setting = "DRACONIC_THROTTLE_USER"


class AnonThrottle(_FixedWindowMixin, AnonRateThrottle):
    """Unauthenticated clients, per IP address: ``DRACONIC_THROTTLE_ANON``."""

    setting = "DRACONIC_THROTTLE_ANON"
