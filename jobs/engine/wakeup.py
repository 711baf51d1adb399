"""Wake-up signalling between the processes that can admit jobs, through Redis.

A request to dispatch sets a "dirty" flag and pushes onto a one-element wake-up list: the flag
is what admission checks before it lets go of its lock (so no request is lost), the list is
what a scheduler blocks on (so it wakes at once, not at its next tick).

The other reason to wake is time, twice over:

- a delayed job's ``run_at`` or a retry's backoff comes, and nobody asks for it. The scheduler
  blocks on the list no longer than ``seconds_until_due`` (``statements.NEXT_DUE``, read in
  PostgreSQL), and reads it again after each wake-up: every submit requests a dispatch, so a
  job due sooner than the one it sleeps for wakes it, and it sleeps anew;
- a rate limit holds a job back until its next token comes: admission sets that time in Redis
  (``dispatch_due_in``) and ``wait_for_request`` sleeps no longer than it
  (``seconds_until_token``); a time set earlier than the one it sleeps for wakes it (a ``due``
  element on the list, which does not count as a request).
"""

from __future__ import annotations

import logging

import redis
from django.db import connection

from jobs.engine import prepared, statements
from jobs.redis_client import get_redis, key

logger = logging.getLogger("draconic.dispatcher")


def dirty_key() -> str:
    return key("dispatch", "dirty")


def _wake_key() -> str:
    return key("dispatch", "wake")


def request_dispatch() -> None:
    """Ask for a dispatch soon, cheaply (after a submit or a release)."""
    try:
        pipe = get_redis().pipeline(transaction=False)
        request_dispatch_in(pipe)
        pipe.execute()
    except redis.RedisError:
        logger.warning("could not request a dispatch; the scheduler tick will do it", exc_info=True)


def _schedules_key() -> str:
    return key("dispatch", "schedules")


def request_schedule_check() -> None:
    """A schedule was saved or resumed: wake a scheduler to read the due times again (it
    otherwise sleeps until the next due time it knows)."""
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.set(_schedules_key(), 1)
        request_dispatch_in(pipe)
        pipe.execute()
    except redis.RedisError:
        logger.warning(
            "could not wake the scheduler; its tick will see the schedule", exc_info=True
        )


def take_schedule_check() -> bool:
    """Whether a schedule changed since the last call (one scheduler takes each change)."""
    return bool(get_redis().getdel(_schedules_key()))


def request_dispatch_in(pipe: redis.client.Pipeline) -> None:
    """Queue the commands of ``request_dispatch`` on a pipeline another call executes."""
    pipe.set(dirty_key(), 1)
    pipe.lpush(_wake_key(), 1)
    pipe.ltrim(_wake_key(), 0, 0)


def _due_key() -> str:
    return key("dispatch", "due")


# KEYS: due, wake.  ARGV: seconds from now.  Sets the due time (on Redis's clock) unless an
# earlier one that has not passed is set; wakes a sleeping scheduler when it moved earlier.
_DUE_IN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local due = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current > now and current <= due then return 0 end
redis.call('SET', KEYS[1], string.format('%.6f', due))
redis.call('LPUSH', KEYS[2], 'due')
redis.call('LTRIM', KEYS[2], 0, 0)
return 1
"""

# KEYS: due.  Seconds until the due time (negative once it passed); nil if none is set.
_SECONDS_UNTIL_DUE = """
local due = redis.call('GET', KEYS[1])
if not due then return false end
local t = redis.call('TIME')
return string.format('%.6f', tonumber(due) - tonumber(t[1]) - tonumber(t[2]) / 1000000)
"""


def dispatch_due_in(seconds: float) -> None:
    """Ask for a dispatch ``seconds`` from now (by Redis's clock), unless one is due sooner."""
    get_redis().eval(_DUE_IN, 2, _due_key(), _wake_key(), seconds)


def seconds_until_token() -> float | None:
    """How long until the dispatch a rate limit set is due (0 or less: now); None if none."""
    raw = get_redis().eval(_SECONDS_UNTIL_DUE, 1, _due_key())
    return None if raw is None else float(raw)


def clear_due() -> None:
    """A dispatch pass starts: the due time it was for is served (the pass sets a new one)."""
    get_redis().delete(_due_key())


def wait_for_request(timeout: float) -> bool:
    """Block up to ``timeout`` seconds (less if a dispatch is due sooner) for a request; True
    if one came or the due time came."""
    due = seconds_until_token()
    if due is not None and due <= 0:
        return True
    wait = timeout if due is None else min(timeout, due)
    got = get_redis().blpop([_wake_key()], timeout=max(wait, 0.01))
    if got is None:
        return due is not None and due <= wait
    if got[1] == b"due":  # a due time moved earlier: sleep again until it (or a request)
        return bool(get_redis().exists(dirty_key()))
    return True


def seconds_until_due() -> float | None:
    """Seconds until the next waiting job's time comes, by PostgreSQL's clock; None when no
    job waits for a time."""
    with connection.cursor() as cursor:
        prepared.execute(cursor, (statements.NEXT_DUE, {}))
        (row,) = prepared.rows(cursor)
    due_in: float | None = row["due_in"]
    return due_in
