"""The dispatcher's lease: who runs admission and the sweeps now, for a bounded time.

One process at a time holds the lease, a Redis key set with a ``PX`` expiry of
``DRACONIC_DISPATCH_LEASE_SECONDS`` (5 s) whose value is ``<token>:<pid>@<host>``; the token
comes from an ``INCR`` and never repeats (the fencing token). The holder renews it with
each page of admission (the fenced reserve does it) and between sweeps (``keep``); a holder
that stops (SIGSTOPped, cut off, stuck in a slow statement) stops renewing and loses the
lease when it expires, at most ``DRACONIC_DISPATCH_LEASE_SECONDS`` after its last renewal;
the next dispatch anyone asks for, or the next scheduler tick, takes it (so admission resumes
within the lease plus one tick).

The lease is not what keeps admission correct: ``FOR UPDATE SKIP LOCKED`` and the ledger's
atomic reserve do that, and the ledger reconcile frees a lease only while it holds its job's
row. It keeps two dispatchers from doing the same pass twice, and it fences the ledger writes
that replace what another dispatcher may have booked: the reserve and the rebuild check, in
their own Lua call, that the lease still carries the caller's token (``FENCE``), and refuse
with ``Fenced`` when it does not, so a holder that wakes up after its lease expired books
nothing and rebuilds nothing. A call made outside a lease (``current()`` is empty) is not
fenced. Nothing here is PostgreSQL session state: the lease works the same behind
PgBouncer's transaction pooling.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import redis
from django.conf import settings

from jobs.redis_client import get_redis, key


class Fenced(Exception):
    """This process's dispatch lease expired (another process may hold it now)."""


# KEYS: lease, counter.  ARGV: ttl ms, holder.  The new value, or nil if the lease is held.
_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local value = redis.call('INCR', KEYS[2]) .. ':' .. ARGV[2]
redis.call('SET', KEYS[1], value, 'PX', tonumber(ARGV[1]))
return value
"""

# KEYS: lease.  ARGV: ttl ms, value.  1 if the lease still had ``value`` (now renewed).
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
"""

# KEYS: lease.  ARGV: value.  Deletes the lease only if it is still ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""

#: The start of a fenced ledger script: its first key is the lease, its first two arguments
#: the value the caller holds ('' outside a lease) and the lease's lifetime in ms
#: (``script_args``); they are taken off before the script proper. A call that passes the
#: fence also renews the lease: admission's reserve is its renewal, one Redis call per page.
FENCE = """
local fence_key = table.remove(KEYS, 1)
local fence_value, fence_ttl = table.remove(ARGV, 1), table.remove(ARGV, 1)
if fence_value ~= '' then
  if redis.call('GET', fence_key) ~= fence_value then
    return redis.error_reply('FENCED the dispatch lease expired')
  end
  redis.call('PEXPIRE', fence_key, tonumber(fence_ttl))
end
"""

_held: contextvars.ContextVar[str] = contextvars.ContextVar("draconic_dispatch_lease", default="")


def lease_key() -> str:
    return key("dispatch", "lease")


def current() -> str:
    """The lease value this process holds (its fencing token first), or '' outside one."""
    return _held.get()


def _ttl_ms() -> int:
    return max(1, int(settings.DRACONIC_DISPATCH_LEASE_SECONDS * 1000))


def holder_name() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


@contextmanager
def hold() -> Iterator[bool]:
    """Take the lease if it is free, for the body; yields whether we got it. The lease is let
    go at the end only if it is still ours."""
    client = get_redis()
    raw = client.eval(_ACQUIRE, 2, lease_key(), key("dispatch", "fence"), _ttl_ms(), holder_name())
    if raw is None:
        yield False
        return
    value = raw.decode() if isinstance(raw, bytes) else str(raw)
    token = _held.set(value)
    try:
        yield True
    finally:
        _held.reset(token)
        with contextlib.suppress(redis.RedisError):  # else it expires by itself
            client.eval(_RELEASE, 1, lease_key(), value)


def script_args() -> list[str | int]:
    """The arguments a ``FENCE``d script takes first: the lease value held, its lifetime."""
    return [current(), _ttl_ms()]


def keep() -> None:
    """Renew the lease this process holds; raise ``Fenced`` if it expired meanwhile. A no-op
    outside a lease."""
    value = current()
    if value and not get_redis().eval(_RENEW, 1, lease_key(), _ttl_ms(), value):
        raise Fenced(f"dispatch lease {value} expired")


def raise_fenced(exc: redis.ResponseError) -> NoReturn:
    """Turn a fenced script's refusal into ``Fenced``; re-raise any other error."""
    if str(exc).startswith("FENCED"):
        raise Fenced(str(exc)) from exc
    raise exc


def holder() -> tuple[int, str] | None:
    """Who holds the lease now: ``(token, "<pid>@<host>")``, or None if nobody does."""
    raw = get_redis().get(lease_key())
    if raw is None:
        return None
    token, _, name = (raw.decode() if isinstance(raw, bytes) else str(raw)).partition(":")
    return int(token), name
