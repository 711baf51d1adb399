"""Limit rules in the ledger and in admission (``jobs.engine.limits``, ``ledger_reserve_all``),
against the real Redis and PostgreSQL: concurrency counters per limit name, rate buckets on
Redis's clock, no head-of-line blocking, the due dispatch a rate-held job leaves, the rebuild
after a flush, and ``holding`` (which limit holds a job back)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from jobs.api.submit import job_submit
from jobs.engine import admission, ledger, limits, recovery, wakeup
from jobs.engine.cancel import job_cancel
from jobs.engine.ledger import GRANTED, LIMITED, NO_ROOM, Claim
from jobs.models import Job, Limit
from jobs.redis_client import get_redis
from tests.factories import make_spec

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def cluster(settings: Any) -> None:
    settings.MAX_CPU_UNITS = 50
    settings.MAX_MEMORY_MB = 1_000_000
    ledger.ledger_rebuild([])


def rules(*rows: tuple[str, int | None, str]) -> limits.Rules:
    return limits.Rules(limits.Rule(key, conc, rate) for key, conc, rate in rows)


def claim(rules_: limits.Rules, concurrency_key: str = "", type_: str = "noop") -> Claim:
    return Claim(
        lease=ledger.lease_id(uuid.uuid4(), 1),
        cpu_units=1,
        memory_mb=10,
        names=limits.job_names(type_, concurrency_key),
        checks=rules_.checks(type_, concurrency_key),
    )


def test_a_pattern_rule_limits_each_key_under_its_prefix_separately() -> None:
    r = rules(("tenant:*", 2, ""))
    claims = [claim(r, "tenant:1") for _ in range(3)] + [claim(r, "tenant:2"), claim(r, "other")]
    outcomes = ledger.ledger_reserve_all(claims).outcomes
    assert outcomes == [GRANTED, GRANTED, LIMITED, GRANTED, GRANTED]
    assert limits.limit_counts(["tenant:1", "tenant:2", "type:noop"]) == [2, 1, 4]

    ledger.ledger_release([claims[0].lease])
    assert limits.limit_counts(["tenant:1"]) == [1]
    assert ledger.ledger_reserve_all([claims[2]]).outcomes == [GRANTED]


def test_an_exact_key_and_a_type_rule_both_apply() -> None:
    r = rules(("tenant:1", 1, ""), ("type:noop", 2, ""))
    first, second, third = claim(r, "tenant:1"), claim(r, "tenant:1"), claim(r, "tenant:2")
    fourth = claim(r, "tenant:3")
    assert ledger.ledger_reserve_all([first, second, third, fourth]).outcomes == [
        GRANTED,
        LIMITED,
        GRANTED,
        LIMITED,  # the type's two are in use
    ]


def test_a_released_lease_twice_frees_its_counters_once() -> None:
    r = rules(("tenant:*", 5, ""))
    held = [claim(r, "tenant:1") for _ in range(2)]
    ledger.ledger_reserve_all(held)
    ledger.ledger_release([held[0].lease])
    ledger.ledger_release([held[0].lease])
    assert limits.limit_counts(["tenant:1"]) == [1]
    ledger.ledger_release([held[1].lease])
    assert limits.names_in_use("tenant:") == {}  # a counter at zero is removed


def test_a_rate_rule_grants_its_bucket_then_says_when_the_next_token_comes() -> None:
    r = rules(("type:noop", None, "2/s"))
    reservation = ledger.ledger_reserve_all([claim(r) for _ in range(3)])
    assert reservation.outcomes == [GRANTED, GRANTED, LIMITED]
    assert reservation.wake_in is not None and 0 < reservation.wake_in <= 0.5


def test_a_limited_claim_is_never_a_barrier() -> None:
    r = rules(("tenant:*", 1, ""))
    ledger.ledger_reserve_all([claim(r, "tenant:1")])
    starving = Claim(
        lease=ledger.lease_id(uuid.uuid4(), 1),
        cpu_units=1,
        memory_mb=10,
        barrier=True,
        names=("type:noop", "tenant:1"),
        checks=r.checks("noop", "tenant:1"),
    )
    assert ledger.ledger_reserve_all([starving, claim(r, "tenant:2")]).outcomes == [
        LIMITED,
        GRANTED,
    ]


def test_a_held_claim_takes_no_token_and_no_room(settings: Any) -> None:
    settings.MAX_CPU_UNITS = 1
    r = rules(("type:noop", None, "1/h"))
    assert ledger.ledger_reserve_all([claim(r, type_="other")]).outcomes == [GRANTED]
    # No room: the token stays in the bucket for when there is.
    assert ledger.ledger_reserve_all([claim(r)]).outcomes == [NO_ROOM]
    settings.MAX_CPU_UNITS = 2
    assert ledger.ledger_reserve_all([claim(r), claim(r)]).outcomes == [GRANTED, LIMITED]


def submit(user: Any, **spec: Any) -> Job:
    job, _ = job_submit(owner=user, spec=make_spec(**spec))
    return job


def statuses(jobs: list[Job]) -> list[str]:
    fresh = {j.id: j.status for j in Job.objects.filter(id__in=[j.id for j in jobs])}
    return [fresh[j.id] for j in jobs]


def test_admission_passes_over_limited_jobs_without_blocking_the_others(user: Any) -> None:
    Limit.objects.create(key="tenant:*", max_concurrency=2)
    crowd = [submit(user, concurrency_key="tenant:a") for _ in range(5)]
    others = [submit(user, concurrency_key="tenant:b") for _ in range(2)] + [submit(user)]
    admission.dispatch()
    assert statuses(crowd) == ["queued"] * 2 + ["pending"] * 3
    assert statuses(others) == ["queued"] * 3

    job_cancel(job=crowd[0])  # its release asks for a dispatch; run it here
    admission.dispatch()
    assert statuses(crowd) == ["cancelled", "queued", "queued", "pending", "pending"]


def test_a_rate_held_job_leaves_a_due_dispatch_for_its_next_token(user: Any) -> None:
    # One a minute (a bucket of one): the next token is a minute away, so it is still to come
    # when it is read, however slow the machine (at 2/s it came within 0.5 s).
    Limit.objects.create(key="type:noop", rate="1/m")
    jobs = [submit(user) for _ in range(3)]
    admission.dispatch()
    assert statuses(jobs) == ["queued", "pending", "pending"]
    due = wakeup.seconds_until_token()
    assert due is not None and 0 < due <= 60


def test_limit_counters_come_back_from_postgresql_after_a_flush(user: Any) -> None:
    Limit.objects.create(key="tenant:*", max_concurrency=2)
    jobs = [submit(user, concurrency_key="tenant:a") for _ in range(3)]
    admission.dispatch()
    assert statuses(jobs) == ["queued", "queued", "pending"]
    get_redis().flushdb()  # this run's database only

    recovery.rebuild_ledger(republish=False)
    assert limits.limit_counts(["tenant:a", "type:noop"]) == [2, 2]
    admission.dispatch()
    assert statuses(jobs) == ["queued", "queued", "pending"]  # the limit still holds


def test_holding_names_the_rule_and_its_current_use(user: Any) -> None:
    Limit.objects.create(key="tenant:*", max_concurrency=1)
    Limit.objects.create(key="type:noop", rate="1/h")
    first, second = (
        submit(user, concurrency_key="tenant:a"),
        submit(user, concurrency_key="tenant:a"),
    )
    admission.dispatch()
    assert statuses([first, second]) == ["queued", "pending"]
    holds = limits.holding(Job.objects.get(id=second.id))
    assert {(h.rule, h.name, h.kind) for h in holds} == {
        ("tenant:*", "tenant:a", "concurrency"),
        ("type:noop", "type:noop", "rate"),
    }
    by_kind = {h.kind: h for h in holds}
    assert (by_kind["concurrency"].in_use, by_kind["concurrency"].max_concurrency) == (1, 1)
    assert by_kind["rate"].tokens is not None and by_kind["rate"].tokens < 1
    assert limits.holding(Job(type="other", concurrency_key="tenant:b")) == []
