"""The retry policy (``jobs.engine.retry``): exponential backoff with jitter and a cap. Pure: every
random draw comes from a seeded ``random.Random``."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from jobs.engine.retry import RetryDecision, RetryPolicy


def rng(seed: int) -> random.Random:
    """A seeded generator, so every jittered delay in these tests is reproducible."""
    return random.Random(seed)  # noqa: S311 (jitter, not security)


NO_JITTER = RetryPolicy(base_delay=2.0, max_delay=300.0, jitter=0.0)


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(0, 2.0), (1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 32.0), (8, 256.0)],
)
def test_the_delay_doubles_with_each_attempt(attempt: int, expected: float) -> None:
    assert NO_JITTER.delay_for(attempt, rng=rng(1)) == pytest.approx(expected)


@pytest.mark.parametrize("attempt", [9, 10, 20, 60, 200])
def test_the_delay_is_capped_at_max_delay(attempt: int) -> None:
    assert NO_JITTER.delay_for(attempt, rng=rng(1)) == pytest.approx(300.0)


def test_the_delay_grows_strictly_until_the_cap() -> None:
    delays = [NO_JITTER.delay_for(a, rng=rng(7)) for a in range(1, 12)]
    below_cap = [d for d in delays if d < 300.0]
    assert below_cap == sorted(below_cap)
    assert len(set(below_cap)) == len(below_cap)
    assert delays[-1] == pytest.approx(300.0)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 7])
def test_jitter_stays_within_plus_or_minus_jitter(seed: int, attempt: int) -> None:
    policy = RetryPolicy(base_delay=2.0, max_delay=300.0, jitter=0.2)
    raw = 2.0 * 2 ** (attempt - 1)
    delay = policy.delay_for(attempt, rng=rng(seed))
    assert raw * 0.8 - 1e-9 <= delay <= raw * 1.2 + 1e-9


def test_jitter_actually_varies_the_delay() -> None:
    policy = RetryPolicy(base_delay=2.0, max_delay=300.0, jitter=0.2)
    delays = {policy.delay_for(3, rng=rng(seed)) for seed in range(20)}
    assert len(delays) > 10


@pytest.mark.parametrize("seed", range(20))
def test_jitter_never_pushes_the_delay_past_the_cap(seed: int) -> None:
    policy = RetryPolicy(base_delay=2.0, max_delay=10.0, jitter=0.5)
    delay = policy.delay_for(30, rng=rng(seed))
    assert 5.0 - 1e-9 <= delay <= 10.0


def test_the_same_seed_gives_the_same_delay() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=60.0, jitter=0.3)
    assert policy.delay_for(4, rng=rng(42)) == policy.delay_for(4, rng=rng(42))


def test_it_retries_a_transient_failure_with_attempts_left() -> None:
    decision = NO_JITTER.decide(attempt=2, max_attempts=3, permanent=False, rng=rng(0))
    assert decision == RetryDecision(delay=timedelta(seconds=4.0))


def test_a_permanent_failure_is_not_retried() -> None:
    assert NO_JITTER.decide(attempt=1, max_attempts=5, permanent=True, rng=rng(0)) is None


@pytest.mark.parametrize(("attempt", "max_attempts"), [(3, 3), (4, 3), (1, 1), (10, 2)])
def test_it_gives_up_once_attempts_reach_max_attempts(attempt: int, max_attempts: int) -> None:
    decision = NO_JITTER.decide(
        attempt=attempt, max_attempts=max_attempts, permanent=False, rng=rng(0)
    )
    assert decision is None


@pytest.mark.parametrize("seed", range(10))
def test_a_decision_carries_the_jittered_delay_of_that_attempt(seed: int) -> None:
    policy = RetryPolicy(base_delay=2.0, max_delay=300.0, jitter=0.2)
    decision = policy.decide(attempt=3, max_attempts=5, permanent=False, rng=rng(seed))
    assert decision is not None
    assert decision.delay == timedelta(seconds=policy.delay_for(3, rng=rng(seed)))
    assert timedelta(seconds=6.4) <= decision.delay <= timedelta(seconds=9.6)


def test_from_settings_reads_the_configured_policy(settings: object) -> None:
    settings.DRACONIC_RETRY_BASE_SECONDS = 3.0  # type: ignore[attr-defined]
    settings.DRACONIC_RETRY_MAX_SECONDS = 30.0  # type: ignore[attr-defined]
    settings.DRACONIC_RETRY_JITTER = 0.0  # type: ignore[attr-defined]
    policy = RetryPolicy.from_settings()
    assert policy == RetryPolicy(base_delay=3.0, max_delay=30.0, jitter=0.0)
    assert policy.delay_for(2, rng=rng(0)) == pytest.approx(6.0)
