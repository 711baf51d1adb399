"""The resource and limit ledger in Redis: how much CPU and memory admitted jobs hold, how
many leases carry each limit name (``type:<type>``, a concurrency key), and the limits' rate
buckets. One reserve checks all of them for each job at once (``_RESERVE``).

A lease is keyed by ``job_id:attempt``, so every operation is idempotent: reserving a lease
twice books once, releasing twice frees once. Reserve, release, renew and reconcile are Lua
scripts, atomic against each other. The ``epoch`` key marks a ledger that was built from
PostgreSQL: when Redis loses its data the key is gone, reserves refuse (``LedgerLost``) and
the dispatcher rebuilds the ledger from the ``queued`` and ``running`` jobs before admitting.

Queued leases never expire (the job may wait behind a backlog); a running job's lease expires
unless its worker renews it, which is how the scheduler finds jobs of a dead worker.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import cast
from uuid import UUID

import redis
from django.conf import settings

from jobs.engine import fence
from jobs.engine.limits import LimitCheck
from jobs.redis_client import get_redis, key


class LedgerLost(Exception):
    """Redis has no ledger (it restarted or was flushed): rebuild it before admitting."""


@dataclass(frozen=True)
class Claim:
    lease: str
    cpu_units: int
    memory_mb: int
    barrier: bool = False
    """If this claim does not fit, admit nothing after it (capacity is kept for it)."""
    names: tuple[str, ...] = ()
    """The job's limit names: each one's counter holds the leases that carry it."""
    checks: tuple[LimitCheck, ...] = ()
    """The limit rules that apply to the job; all must pass for it to be granted."""


#: What ``ledger_reserve_all`` says of each claim.
NO_ROOM, GRANTED, LIMITED = 0, 1, 2


@dataclass(frozen=True)
class Reservation:
    outcomes: list[int]
    """Per claim: GRANTED, NO_ROOM (CPU or memory) or LIMITED (a limit rule holds it)."""
    wake_in: float | None
    """Seconds until the first token that a rate-held claim waits for; None if none does."""


@dataclass(frozen=True)
class Usage:
    cpu_units: int
    memory_mb: int
    leases: int
    capacity_cpu: int
    capacity_memory: int


def lease_id(job_id: UUID | str, attempt: int) -> str:
    return f"{job_id}:{attempt}"


def parse_lease(lease: str | bytes) -> tuple[str, int]:
    text = lease.decode() if isinstance(lease, bytes) else lease
    job_id, _, attempt = text.rpartition(":")
    return job_id, int(attempt)


# Expiries are on Redis's clock (TIME), never a worker's: a worker whose clock runs behind
# must not make live leases look expired to a scheduler on another machine.
_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000"

# KEYS: used, leases, expiry, epoch, names, running, buckets.
# ARGV: cap_cpu, cap_mem, then per claim: lease, cpu, mem, barrier, names (the job's limit
# names joined by newlines), the number of checks, and 5 values per check: name,
# max_concurrency (0: none), bucket ('' : no rate), tokens per second, bucket size.
# Returns per claim 1 (granted), 0 (no room: CPU or memory) or 2 (held by a limit), then the
# milliseconds until the first token a rate-held claim waits for (-1: none).
# A claim is granted only if every check passes and it fits: then its tokens are taken, its
# names' counters go up and it holds its CPU and memory, all in this one atomic call.
_RESERVE = (
    fence.FENCE
    + _NOW
    + """
if redis.call('EXISTS', KEYS[4]) == 0 then return {-1} end
local cap_cpu, cap_mem = tonumber(ARGV[1]), tonumber(ARGV[2])
local cpu = tonumber(redis.call('HGET', KEYS[1], 'cpu') or '0')
local mem = tonumber(redis.call('HGET', KEYS[1], 'mem') or '0')
local out = {}
local stopped = false
local wait = -1
local i = 3
while i <= #ARGV do
  local lease, c, m, barrier = ARGV[i], tonumber(ARGV[i+1]), tonumber(ARGV[i+2]), ARGV[i+3]
  local names, first, count = ARGV[i+4], i + 6, tonumber(ARGV[i+5])
  i = first + 5 * count
  local held, levels = false, {}
  for j = first, first + 5 * (count - 1), 5 do
    local maxc, bucket = tonumber(ARGV[j+1]), ARGV[j+2]
    if maxc > 0 and tonumber(redis.call('HGET', KEYS[6], ARGV[j]) or '0') >= maxc then
      held = true
    end
    if bucket ~= '' then
      local rate, size = tonumber(ARGV[j+3]), tonumber(ARGV[j+4])
      local level, state = size, redis.call('HGET', KEYS[7], bucket)
      if state then
        local sep = string.find(state, ':')
        local tokens, at = tonumber(string.sub(state, 1, sep - 1)), tonumber(string.sub(state, sep + 1))
        level = math.min(size, tokens + math.max(0, now - at) * rate)
      end
      if level < 1 then
        held = true
        local due = math.ceil((1 - level) / rate * 1000)
        if wait < 0 or due < wait then wait = due end
      else
        levels[#levels+1] = {bucket, level}
      end
    end
  end
  if stopped then
    out[#out+1] = 0
  elseif redis.call('HEXISTS', KEYS[2], lease) == 1 then
    out[#out+1] = 1
  elseif held then
    out[#out+1] = 2
  elseif cpu + c <= cap_cpu and mem + m <= cap_mem then
    cpu = cpu + c
    mem = mem + m
    redis.call('HSET', KEYS[2], lease, c .. ':' .. m)
    redis.call('ZADD', KEYS[3], 'inf', lease)
    for _, b in ipairs(levels) do
      redis.call('HSET', KEYS[7], b[1], string.format('%.6f:%.6f', b[2] - 1, now))
    end
    if names ~= '' then
      redis.call('HSET', KEYS[5], lease, names)
      for name in string.gmatch(names, '[^\\n]+') do redis.call('HINCRBY', KEYS[6], name, 1) end
    end
    out[#out+1] = 1
  else
    out[#out+1] = 0
    if barrier == '1' then stopped = true end
  end
end
redis.call('HSET', KEYS[1], 'cpu', cpu, 'mem', mem)
out[#out+1] = wait
return out
"""
)

# KEYS: used, leases, expiry, names, running.  ARGV: leases to free.  Returns how many were
# held. A lease's limit names come down with it (a counter at zero is removed).
_RELEASE = """
local freed = 0
for i = 1, #ARGV do
  local held = redis.call('HGET', KEYS[2], ARGV[i])
  if held then
    local sep = string.find(held, ':')
    redis.call('HINCRBY', KEYS[1], 'cpu', -tonumber(string.sub(held, 1, sep - 1)))
    redis.call('HINCRBY', KEYS[1], 'mem', -tonumber(string.sub(held, sep + 1)))
    redis.call('HDEL', KEYS[2], ARGV[i])
    redis.call('ZREM', KEYS[3], ARGV[i])
    local names = redis.call('HGET', KEYS[4], ARGV[i])
    if names then
      for name in string.gmatch(names, '[^\\n]+') do
        if redis.call('HINCRBY', KEYS[5], name, -1) <= 0 then redis.call('HDEL', KEYS[5], name) end
      end
      redis.call('HDEL', KEYS[4], ARGV[i])
    end
    freed = freed + 1
  end
end
return freed
"""

# KEYS: leases, expiry.  ARGV: ttl, lease.  Extends a held lease; 0 if not held.
_RENEW = (
    _NOW
    + """
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), ARGV[2])
return 1
"""
)

# KEYS: expiry.  ARGV: limit.  Leases whose expiry passed, by Redis's clock.
_EXPIRED = (
    _NOW
    + """
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
"""
)

# KEYS: used, leases, expiry, epoch, names, running.  ARGV: epoch, then lease, cpu, mem,
# ttl ('inf'), names ...  Replaces the whole ledger with the given leases (the truth from
# PostgreSQL), the limits' counters included; the rate buckets are kept (a flush loses them:
# each starts full again, one second's worth of tokens).
_REBUILD = (
    fence.FENCE
    + _NOW
    + """
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[5], KEYS[6])
local cpu, mem = 0, 0
for i = 2, #ARGV, 5 do
  local c, m, names = tonumber(ARGV[i+1]), tonumber(ARGV[i+2]), ARGV[i+4]
  cpu = cpu + c
  mem = mem + m
  redis.call('HSET', KEYS[2], ARGV[i], c .. ':' .. m)
  local ttl = ARGV[i+3]
  redis.call('ZADD', KEYS[3], ttl == 'inf' and 'inf' or (now + tonumber(ttl)), ARGV[i])
  if names ~= '' then
    redis.call('HSET', KEYS[5], ARGV[i], names)
    for name in string.gmatch(names, '[^\\n]+') do redis.call('HINCRBY', KEYS[6], name, 1) end
  end
end
redis.call('HSET', KEYS[1], 'cpu', cpu, 'mem', mem)
redis.call('SET', KEYS[4], ARGV[1])
return cpu
"""
)


# KEYS: used, leases, expiry, names, running.  ARGV: lease, cpu, mem, ttl ('inf'), names ...
# Adds each lease the ledger does not hold (one it holds is left as it is); returns how many
# it added. The reconcile's repair: unlike a rebuild it keeps what others booked meanwhile.
_ADD_MISSING = (
    fence.FENCE
    + _NOW
    + """
local added = 0
for i = 1, #ARGV, 5 do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 then
    local c, m, names, ttl = tonumber(ARGV[i+1]), tonumber(ARGV[i+2]), ARGV[i+4], ARGV[i+3]
    redis.call('HINCRBY', KEYS[1], 'cpu', c)
    redis.call('HINCRBY', KEYS[1], 'mem', m)
    redis.call('HSET', KEYS[2], ARGV[i], c .. ':' .. m)
    redis.call('ZADD', KEYS[3], ttl == 'inf' and 'inf' or (now + tonumber(ttl)), ARGV[i])
    if names ~= '' then
      redis.call('HSET', KEYS[4], ARGV[i], names)
      for name in string.gmatch(names, '[^\\n]+') do redis.call('HINCRBY', KEYS[5], name, 1) end
    end
    added = added + 1
  end
end
return added
"""
)


def _keys() -> list[str]:
    return [
        key("ledger", "used"),
        key("ledger", "leases"),
        key("ledger", "expiry"),
        key("ledger", "epoch"),
        key("ledger", "names"),
        key("ledger", "running"),
        key("ledger", "buckets"),
    ]


def _release_keys() -> list[str]:
    used, leases, expiry, _epoch, names, running, _buckets = _keys()
    return [used, leases, expiry, names, running]


@functools.cache
def _script(source: str):  # type: ignore[no-untyped-def]
    """A script run by EVALSHA (loaded on first use; the client is one per process)."""
    return get_redis().register_script(source)


def ledger_reserve(claims: Sequence[Claim]) -> list[bool]:
    """Try each claim in order; True for those now held. Raises LedgerLost if Redis lost it."""
    return [outcome == GRANTED for outcome in ledger_reserve_all(claims).outcomes]


def ledger_reserve_all(claims: Sequence[Claim]) -> Reservation:
    """Try each claim in order, its CPU, memory and limits at once (one Lua call, atomic
    against every other process). Raises LedgerLost if Redis lost the ledger."""
    if not claims:
        return Reservation(outcomes=[], wake_in=None)
    args: list[str | int | float] = [settings.MAX_CPU_UNITS, settings.MAX_MEMORY_MB]
    for claim in claims:
        args += [claim.lease, claim.cpu_units, claim.memory_mb, "1" if claim.barrier else "0"]
        args += ["\n".join(claim.names), len(claim.checks)]
        for check in claim.checks:
            args += check.args()
    try:
        result = _script(_RESERVE)(
            keys=[fence.lease_key(), *_keys()], args=[*fence.script_args(), *args]
        )
    except redis.ResponseError as exc:
        fence.raise_fenced(exc)
    if result and result[0] == -1:
        raise LedgerLost("the resource ledger is missing from Redis")
    *outcomes, wait_ms = (int(r) for r in result)
    return Reservation(outcomes=outcomes, wake_in=None if wait_ms < 0 else wait_ms / 1000)


def ledger_release(
    leases: Iterable[str], *, then: Callable[[redis.client.Pipeline], None] | None = None
) -> int:
    """Free the given leases; returns how many were still held (a repeat frees nothing).

    ``then`` may queue more commands on the same pipeline (one round trip for both)."""
    leases = list(leases)
    if not leases:
        return 0
    pipe = get_redis().pipeline(transaction=False)
    release_in(pipe, leases)
    if then is not None:
        then(pipe)
    return int(pipe.execute()[0])


def release_in(pipe: redis.client.Pipeline, leases: Sequence[str]) -> None:
    """Queue ``ledger_release`` of ``leases`` on a pipeline another call executes. EVAL, not a
    registered script: redis-py checks a pipeline's scripts with a ``SCRIPT EXISTS`` round
    trip of its own before every execute; Redis caches the compiled body either way."""
    keys = _release_keys()
    pipe.eval(_RELEASE, len(keys), *keys, *leases)


def ledger_renew(lease: str, *, ttl: float | None = None) -> bool:
    """Push a running lease's expiry ``ttl`` seconds ahead; False if it is no longer held."""
    ttl = ttl if ttl is not None else settings.DRACONIC_LEASE_SECONDS
    return bool(_script(_RENEW)(keys=_keys()[1:3], args=[ttl, lease]))


#: A lease as the rebuild takes it: ``(lease, cpu, mem, ttl, names)``.
Entry = tuple[str, int, int, float] | tuple[str, int, int, float, Sequence[str]]


def ledger_rebuild(entries: Iterable[Entry]) -> int:
    """Replace the ledger with ``(lease, cpu, mem, ttl[, names])`` entries (``ttl`` in seconds
    from now, or ``inf`` for a queued job's lease; ``names`` its limit names); returns the CPU
    units in use."""
    args: list[str | int | float] = [str(time.time())]
    for lease, cpu, mem, ttl, *rest in entries:
        names = rest[0] if rest else ()
        args += [lease, cpu, mem, "inf" if ttl == float("inf") else ttl, "\n".join(names)]
    try:
        keys = [fence.lease_key(), *_keys()[:6]]
        return int(_script(_REBUILD)(keys=keys, args=[*fence.script_args(), *args]))
    except redis.ResponseError as exc:
        fence.raise_fenced(exc)


def ledger_add_missing(entries: Iterable[Entry]) -> int:
    """Add those of ``(lease, cpu, mem, ttl[, names])`` the ledger does not hold, keeping every
    lease it holds (fenced like the reserve); returns how many it added."""
    args: list[str | int | float] = []
    for lease, cpu, mem, ttl, *rest in entries:
        names = rest[0] if rest else ()
        args += [lease, cpu, mem, "inf" if ttl == float("inf") else ttl, "\n".join(names)]
    if not args:
        return 0
    try:
        keys = [fence.lease_key(), *_release_keys()]
        return int(_script(_ADD_MISSING)(keys=keys, args=[*fence.script_args(), *args]))
    except redis.ResponseError as exc:
        fence.raise_fenced(exc)


def ledger_is_present() -> bool:
    return bool(get_redis().exists(key("ledger", "epoch")))


def ledger_expired(*, now: float | None = None, limit: int = 500) -> list[str]:
    """Leases whose holder stopped renewing them (by Redis's clock, unless ``now`` is given)."""
    raw: list[bytes]  # the client does not decode responses
    if now is None:
        raw = _script(_EXPIRED)(keys=[key("ledger", "expiry")], args=[limit])
    else:
        raw = cast(
            "list[bytes]",
            get_redis().zrangebyscore(key("ledger", "expiry"), "-inf", now, start=0, num=limit),
        )
    return [item.decode() for item in raw]


def ledger_unexpiring(*, limit: int = 1000) -> list[str]:
    """Leases that never expire: those of queued jobs, until their worker first renews them."""
    raw = cast(
        "list[bytes]",
        get_redis().zrangebyscore(key("ledger", "expiry"), "+inf", "+inf", start=0, num=limit),
    )
    return [item.decode() for item in raw]


def ledger_leases() -> dict[str, tuple[int, int]]:
    raw = cast("dict[bytes, bytes]", get_redis().hgetall(key("ledger", "leases")))
    out: dict[str, tuple[int, int]] = {}
    for lease, held in raw.items():
        cpu, _, mem = held.decode().partition(":")
        out[lease.decode()] = (int(cpu), int(mem))
    return out


def ledger_usage() -> Usage:
    client = get_redis()
    pipe = client.pipeline(transaction=False)
    pipe.hmget(key("ledger", "used"), "cpu", "mem")
    pipe.hlen(key("ledger", "leases"))
    (cpu, mem), count = pipe.execute()
    return Usage(
        cpu_units=int(cpu or 0),
        memory_mb=int(mem or 0),
        leases=int(count),
        capacity_cpu=settings.MAX_CPU_UNITS,
        capacity_memory=settings.MAX_MEMORY_MB,
    )
