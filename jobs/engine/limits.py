"""Limit rules: what they look like, which apply to a job, and which one holds a job back.

A job has one or two *limit names*: ``type:<its type>`` and, if it carries one, its
``concurrency_key`` (``tenant:42``). A rule (the ``Limit`` table, managed by staff) applies to
a name equal to its key, or, for a pattern key ending in ``*`` (``tenant:*``), to every name
under that prefix, each name with a limit of its own. A rule bounds how many leases (queued
or running jobs) may carry the name at once (``max_concurrency``) and/or how many jobs with it
may start per second, minute or hour (``rate``: a token bucket that holds at most one second's
worth of tokens, and at least one, so a rule is never exceeded by more than that burst).

The counters and the buckets live in the Redis ledger, checked with CPU and memory in one Lua
call (``ledger.ledger_reserve_all``); the rules live in PostgreSQL, read on each admission
pass, so a new or changed rule holds from the next pass. The counters count every lease's
names whether a rule names them or not: a rule created while jobs run counts them at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from jobs.redis_client import get_redis, key

#: What a concurrency key (and a rule key) may be made of: no spaces, no ``*``, no ``|``.
KEY_CHARACTERS = re.compile(r"[A-Za-z0-9_.:/@+=-]{1,200}")
TYPE_PREFIX = "type:"
_RATE = re.compile(r"([1-9][0-9]{0,6})/([smh])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class LimitCheck:
    """One rule as it applies to one job: the counter ``name`` it counts (a limit name of the
    job) against ``max_concurrency``, and/or the token bucket ``bucket`` (one per rule and
    name) that refills at ``rate`` tokens a second up to ``burst``."""

    rule: str
    name: str
    max_concurrency: int | None = None
    bucket: str = ""
    rate: float = 0.0
    burst: float = 1.0

    def args(self) -> list[str | int | float]:
        """This check as the ledger's reserve script reads it (5 values)."""
        return [self.name, self.max_concurrency or 0, self.bucket, self.rate, self.burst]


@dataclass(frozen=True)
class Rule:
    key: str
    max_concurrency: int | None
    rate: str

    @property
    def prefix(self) -> str | None:
        """For a pattern rule (``tenant:*``) the prefix it covers; None for an exact key."""
        return self.key[:-1] if self.key.endswith("*") else None

    def check(self, name: str) -> LimitCheck:
        per_second = rate_per_second(self.rate) if self.rate else 0.0
        return LimitCheck(
            rule=self.key,
            name=name,
            max_concurrency=self.max_concurrency,
            bucket=f"{self.key}|{name}" if self.rate else "",
            rate=per_second,
            burst=max(1.0, per_second),
        )


def concurrency_key_problem(value: str) -> str | None:
    """Why ``value`` cannot be a job's concurrency key; None if it can."""
    if not KEY_CHARACTERS.fullmatch(value):
        return "must be 1-200 characters of letters, digits and _ . : / @ + = -"
    if value.startswith(TYPE_PREFIX):
        return f"must not start with {TYPE_PREFIX!r} (those limit names are the job types')"
    return None


def rule_key_problem(value: str) -> str | None:
    """Why ``value`` cannot be a rule's key; None if it can."""
    exact = value[:-1] if value.endswith("*") else value
    if not KEY_CHARACTERS.fullmatch(exact):
        return (
            "must be type:<job type>, a concurrency key, or a prefix ending in * (tenant:*): "
            "1-200 characters of letters, digits and _ . : / @ + = -, and * only at the end"
        )
    if value.startswith(TYPE_PREFIX) and not value.endswith("*") and exact == TYPE_PREFIX:
        return "type: must name a job type (type:send_email), or be the pattern type:*"
    return None


def rate_per_second(rate: str) -> float:
    """``"10/s"``, ``"600/m"``, ``"1000/h"`` in tokens a second; ValueError otherwise."""
    match = _RATE.fullmatch(rate)
    if match is None:
        raise ValueError('must be N/s, N/m or N/h with N a positive whole number ("10/s")')
    return int(match.group(1)) / _UNIT_SECONDS[match.group(2)]


def rule_problems(key_: str, max_concurrency: int | None, rate: str) -> dict[str, str]:
    """What is wrong with a rule, by field (empty if nothing): the API and the admin both
    check a rule with this before it is stored."""
    problems = {}
    problem = rule_key_problem(key_)
    if problem is not None:
        problems["key"] = problem
    if max_concurrency is not None and max_concurrency < 1:
        problems["max_concurrency"] = "must be at least 1"
    if rate:
        try:
            rate_per_second(rate)
        except ValueError as exc:
            problems["rate"] = str(exc)
    if max_concurrency is None and not rate and not problems:
        problems["max_concurrency"] = "give max_concurrency, rate, or both"
    return problems


def job_names(type_: str, concurrency_key: str) -> tuple[str, ...]:
    """The limit names a job carries."""
    return (TYPE_PREFIX + type_, concurrency_key) if concurrency_key else (TYPE_PREFIX + type_,)


class Rules:
    """The rules in force, indexed for matching many jobs in one admission pass."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        rules = list(rules)
        self.exact = {r.key: r for r in rules if r.prefix is None}
        self.patterns = [r for r in rules if r.prefix is not None]

    def __bool__(self) -> bool:
        return bool(self.exact or self.patterns)

    def checks(self, type_: str, concurrency_key: str) -> tuple[LimitCheck, ...]:
        """Every rule that applies to a job of ``type_`` with ``concurrency_key``."""
        out = []
        for name in job_names(type_, concurrency_key):
            exact = self.exact.get(name)
            if exact is not None:
                out.append(exact.check(name))
            out += [r.check(name) for r in self.patterns if name.startswith(cast("str", r.prefix))]
        return tuple(out)


def load_rules() -> Rules:
    """The rules as PostgreSQL has them now."""
    from jobs.models import Limit  # the engine imports no models at import time

    return Rules(Rule(**row) for row in Limit.objects.values("key", "max_concurrency", "rate"))


@dataclass(frozen=True)
class Hold:
    """A limit that holds a job back now: the rule's key, the limit name it counts, and its
    use (``in_use`` leases of ``max_concurrency``, or ``tokens`` left of one needed)."""

    rule: str
    name: str
    kind: str  # "concurrency" or "rate"
    in_use: int | None = None
    max_concurrency: int | None = None
    tokens: float | None = None
    rate: str = ""


def holding(job: Any, rules: Rules | None = None) -> list[Hold]:
    """Which limits hold ``job`` (anything with ``type`` and ``concurrency_key``) back now, by
    the ledger's current use; empty if none would. For ``waiting_on`` and the dashboard."""
    rules = load_rules() if rules is None else rules
    names = job_names(job.type, job.concurrency_key)
    counts = dict(zip(names, limit_counts(names), strict=True))
    rates = {r.key: r.rate for r in (*rules.exact.values(), *rules.patterns)}
    holds = []
    for check in rules.checks(job.type, job.concurrency_key):
        used = counts[check.name]
        if check.max_concurrency is not None and used >= check.max_concurrency:
            holds.append(
                Hold(
                    check.rule,
                    check.name,
                    "concurrency",
                    in_use=used,
                    max_concurrency=check.max_concurrency,
                )
            )
        if check.bucket and (tokens := limit_tokens(check)) < 1:
            holds.append(
                Hold(check.rule, check.name, "rate", tokens=tokens, rate=rates[check.rule])
            )
    return holds


def rule_in_use(rule_key: str) -> dict[str, int]:
    """The limit names a rule counts that some lease carries now, with their counts (one name
    for an exact key; every name under the prefix for a pattern)."""
    if rule_key.endswith("*"):
        return names_in_use(rule_key[:-1])
    return {rule_key: limit_counts([rule_key])[0]}


def limit_counts(names: Sequence[str]) -> list[int]:
    """How many leases carry each of ``names`` now."""
    if not names:
        return []
    raw = cast("list[bytes | None]", get_redis().hmget(key("ledger", "running"), list(names)))
    return [int(value or 0) for value in raw]


def names_in_use(prefix: str = "") -> dict[str, int]:
    """Every limit name some lease carries now (under ``prefix``), with its count."""
    raw = cast("dict[bytes, bytes]", get_redis().hgetall(key("ledger", "running")))
    found = {k.decode(): int(v) for k, v in raw.items()}
    return {k: v for k, v in found.items() if k.startswith(prefix)}


# KEYS: buckets.  ARGV: bucket, rate, burst.  The tokens a bucket holds now, by Redis's clock
# (a bucket the ledger has no state for is full).
_TOKENS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HGET', KEYS[1], ARGV[1])
if not state then return ARGV[3] end
local sep = string.find(state, ':')
local tokens, at = tonumber(string.sub(state, 1, sep - 1)), tonumber(string.sub(state, sep + 1))
local level = tokens + math.max(0, now - at) * tonumber(ARGV[2])
return string.format('%.6f', math.min(tonumber(ARGV[3]), level))
"""


def limit_tokens(check: LimitCheck) -> float:
    """The tokens ``check``'s bucket holds now (a job needs one to start)."""
    raw = get_redis().eval(
        _TOKENS, 1, key("ledger", "buckets"), check.bucket, check.rate, check.burst
    )
    return float(raw)
