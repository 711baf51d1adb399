"""When a failed attempt runs again: exponential backoff with jitter and a cap. Pure.

Each job type may set its own (``draconic_sdk.RetryPolicy``: base, cap, jitter); the
``DRACONIC_RETRY_*`` settings are the policy of the types that set none (``of_type``)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings

from draconic_sdk.jobtypes import RetryPolicy as TypeRetryPolicy


@dataclass(frozen=True)
class RetryDecision:
    delay: timedelta


@dataclass(frozen=True)
class RetryPolicy:
    base_delay: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.2

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        return cls(
            base_delay=settings.DRACONIC_RETRY_BASE_SECONDS,
            max_delay=settings.DRACONIC_RETRY_MAX_SECONDS,
            jitter=settings.DRACONIC_RETRY_JITTER,
        )

    @classmethod
    def of_type(cls, retry: TypeRetryPolicy | None) -> RetryPolicy:
        """The backoff of a job type's retry policy; the settings' when the type sets none."""
        if retry is None:
            return cls.from_settings()
        return cls(base_delay=retry.base_seconds, max_delay=retry.cap_seconds, jitter=retry.jitter)

    def delay_for(self, attempt: int, *, rng: random.Random | None = None) -> float:
        """Seconds before attempt ``attempt + 1``: base * 2**(attempt-1), capped, +-jitter."""
        raw: float = min(self.max_delay, self.base_delay * (2 ** max(attempt - 1, 0)))
        spread = raw * self.jitter
        draw = (rng or random).uniform(-spread, spread)
        return max(0.0, min(self.max_delay, raw + draw))

    def decide(
        self, *, attempt: int, max_attempts: int, permanent: bool, rng: random.Random | None = None
    ) -> RetryDecision | None:
        """A decision to retry after a delay, or None when the job must go to the DLQ."""
        if permanent or attempt >= max_attempts:
            return None
        return RetryDecision(delay=timedelta(seconds=self.delay_for(attempt, rng=rng)))
