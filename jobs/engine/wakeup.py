"""Wake-up signalling between the processes that can admit jobs, through Redis.

A request to dispatch sets a "dirty" flag and pushes onto a one-element wake-up list: the flag
is what admission checks before it lets go of its lock (so no request is lost), the list is
what a scheduler blocks on (so it wakes at once, not at its next tick).

The other reason to wake is time: a delayed job's ``run_at`` or a retry's backoff comes, and
nobody asks for it. The scheduler blocks on the list no longer than ``seconds_until_due``
(``statements.NEXT_DUE``), and reads it again after each wake-up: every submit requests a
dispatch, so a job due sooner than the one it sleeps for wakes it, and it sleeps anew.
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


def request_dispatch_in(pipe: redis.client.Pipeline) -> None:
    """Queue the commands of ``request_dispatch`` on a pipeline another call executes."""
    pipe.set(dirty_key(), 1)
    pipe.lpush(_wake_key(), 1)
    pipe.ltrim(_wake_key(), 0, 0)


def wait_for_request(timeout: float) -> bool:
    """Block up to ``timeout`` seconds for a dispatch request; True if one came."""
    return get_redis().blpop([_wake_key()], timeout=max(timeout, 0.01)) is not None


def seconds_until_due() -> float | None:
    """Seconds until the next waiting job's time comes, by PostgreSQL's clock; None when no
    job waits for a time."""
    with connection.cursor() as cursor:
        prepared.execute(cursor, (statements.NEXT_DUE, {}))
        (row,) = prepared.rows(cursor)
    due_in: float | None = row["due_in"]
    return due_in
