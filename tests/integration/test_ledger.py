"""The resource ledger (``jobs.engine.ledger``) against the real Redis, and the scheduler's
reconciliation of it with PostgreSQL (``jobs.engine.recovery.reconcile_ledger``).

The autouse fixture flushes this run's Redis database before each test, so every test starts
with no ledger at all (as after a Redis restart)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from jobs.engine import admission, ledger, recovery
from jobs.engine.ledger import Claim, LedgerLost
from jobs.engine.recovery import reconcile_ledger
from jobs.models import Job, JobStatus
from tests.factories import move_to


@pytest.fixture
def capacity(settings: Any) -> Any:
    """A small cluster: 4 CPU units and 1,000 MB."""
    settings.MAX_CPU_UNITS = 4
    settings.MAX_MEMORY_MB = 1000
    return settings


@pytest.fixture
def fresh_ledger(capacity: Any) -> Iterator[None]:
    """An empty ledger that exists (its epoch key is set), as after a rebuild from an empty DB."""
    ledger.ledger_rebuild([])
    yield


def claim(
    cpu: int = 1, mem: int = 100, *, barrier: bool = False, lease: str | None = None
) -> Claim:
    return Claim(
        lease=lease or ledger.lease_id(uuid.uuid4(), 1),
        cpu_units=cpu,
        memory_mb=mem,
        barrier=barrier,
    )


@pytest.mark.usefixtures("fresh_ledger")
def test_it_reserves_within_capacity() -> None:
    claims = [claim(2, 300), claim(1, 300), claim(1, 300)]
    assert ledger.ledger_reserve(claims) == [True, True, True]
    usage = ledger.ledger_usage()
    assert (usage.cpu_units, usage.memory_mb, usage.leases) == (4, 900, 3)
    assert set(ledger.ledger_leases()) == {c.lease for c in claims}


@pytest.mark.usefixtures("fresh_ledger")
def test_it_refuses_a_claim_over_the_cpu_capacity() -> None:
    assert ledger.ledger_reserve([claim(3, 100)]) == [True]
    assert ledger.ledger_reserve([claim(2, 100)]) == [False]
    usage = ledger.ledger_usage()
    assert (usage.cpu_units, usage.memory_mb, usage.leases) == (3, 100, 1)


@pytest.mark.usefixtures("fresh_ledger")
def test_it_refuses_a_claim_over_the_memory_capacity() -> None:
    assert ledger.ledger_reserve([claim(1, 800)]) == [True]
    assert ledger.ledger_reserve([claim(1, 201)]) == [False]
    assert ledger.ledger_reserve([claim(1, 200)]) == [True]
    usage = ledger.ledger_usage()
    assert (usage.cpu_units, usage.memory_mb, usage.leases) == (2, 1000, 2)


@pytest.mark.usefixtures("fresh_ledger")
def test_a_refused_claim_does_not_stop_smaller_ones_after_it() -> None:
    assert ledger.ledger_reserve([claim(3), claim(2), claim(1)]) == [True, False, True]
    assert ledger.ledger_usage().cpu_units == 4


@pytest.mark.usefixtures("fresh_ledger")
def test_reserving_the_same_lease_twice_books_it_once() -> None:
    same = claim(2, 200)
    assert ledger.ledger_reserve([same]) == [True]
    assert ledger.ledger_reserve([same]) == [True]
    assert ledger.ledger_reserve([same, same]) == [True, True]
    usage = ledger.ledger_usage()
    assert (usage.cpu_units, usage.memory_mb, usage.leases) == (2, 200, 1)


@pytest.mark.usefixtures("fresh_ledger")
def test_a_lease_is_freed_once_and_a_second_release_frees_nothing() -> None:
    first, second = claim(2, 200), claim(1, 100)
    ledger.ledger_reserve([first, second])
    assert ledger.ledger_release([first.lease]) == 1
    assert ledger.ledger_release([first.lease]) == 0
    assert ledger.ledger_release([first.lease, "unknown:1"]) == 0
    usage = ledger.ledger_usage()
    assert (usage.cpu_units, usage.memory_mb, usage.leases) == (1, 100, 1)
    assert ledger.ledger_release([]) == 0


@pytest.mark.usefixtures("fresh_ledger")
def test_a_failed_barrier_claim_stops_every_claim_after_it() -> None:
    ledger.ledger_reserve([claim(2)])
    big, small1, small2 = claim(4, barrier=True), claim(1), claim(1)
    assert ledger.ledger_reserve([big, small1, small2]) == [False, False, False]
    assert ledger.ledger_usage().cpu_units == 2


@pytest.mark.usefixtures("fresh_ledger")
def test_a_barrier_claim_that_fits_stops_nothing() -> None:
    assert ledger.ledger_reserve([claim(2, barrier=True), claim(1), claim(1)]) == [True] * 3
    assert ledger.ledger_usage().cpu_units == 4


@pytest.mark.usefixtures("fresh_ledger")
def test_claims_before_a_failed_barrier_are_kept() -> None:
    assert ledger.ledger_reserve([claim(1), claim(4, barrier=True), claim(1)]) == [
        True,
        False,
        False,
    ]
    assert ledger.ledger_usage().cpu_units == 1


@pytest.mark.usefixtures("capacity")
def test_reserve_raises_ledger_lost_on_a_fresh_redis() -> None:
    assert not ledger.ledger_is_present()
    with pytest.raises(LedgerLost):
        ledger.ledger_reserve([claim()])
    assert ledger.ledger_usage().leases == 0


@pytest.mark.usefixtures("capacity")
def test_a_rebuild_restores_the_ledger_with_the_given_leases() -> None:
    held = ledger.lease_id(uuid.uuid4(), 2)
    assert ledger.ledger_rebuild([(held, 3, 300, float("inf"))]) == 3
    assert ledger.ledger_is_present()
    assert ledger.ledger_leases() == {held: (3, 300)}
    assert ledger.ledger_reserve([claim(2)]) == [False]
    assert ledger.ledger_reserve([claim(1)]) == [True]


@pytest.mark.usefixtures("fresh_ledger")
def test_a_rebuild_replaces_everything_that_was_there() -> None:
    ledger.ledger_reserve([claim(2), claim(2)])
    ledger.ledger_rebuild([("kept:1", 1, 10, float("inf"))])
    usage = ledger.ledger_usage()
    assert (usage.cpu_units, usage.memory_mb, usage.leases) == (1, 10, 1)


@pytest.mark.usefixtures("fresh_ledger")
def test_renew_extends_only_a_held_lease() -> None:
    held = claim()
    ledger.ledger_reserve([held])
    assert ledger.ledger_renew(held.lease, ttl=60) is True
    assert ledger.ledger_renew("never-held:1", ttl=60) is False
    ledger.ledger_release([held.lease])
    assert ledger.ledger_renew(held.lease, ttl=60) is False
    assert ledger.ledger_expired(now=time.time() + 3600) == []
    assert ledger.ledger_usage().leases == 0


@pytest.mark.usefixtures("fresh_ledger")
def test_a_queued_lease_never_expires_until_it_is_renewed() -> None:
    queued = claim()
    ledger.ledger_reserve([queued])
    assert ledger.ledger_expired(now=time.time() + 10**9) == []
    ledger.ledger_renew(queued.lease, ttl=60)
    assert ledger.ledger_expired(now=time.time()) == []
    assert ledger.ledger_expired(now=time.time() + 120) == [queued.lease]


@pytest.mark.usefixtures("fresh_ledger")
def test_expired_lists_exactly_the_leases_whose_expiry_passed() -> None:
    stale, live, queued = claim(), claim(), claim()
    ledger.ledger_reserve([stale, live, queued])
    ledger.ledger_renew(stale.lease, ttl=-1)
    ledger.ledger_renew(live.lease, ttl=3600)
    assert ledger.ledger_expired() == [stale.lease]
    ledger.ledger_renew(stale.lease, ttl=3600)  # its worker came back in time
    assert ledger.ledger_expired() == []
    ledger.ledger_release([live.lease])
    assert ledger.ledger_expired(now=time.time() + 7200) == [stale.lease]


@pytest.mark.usefixtures("fresh_ledger")
def test_expired_respects_its_limit() -> None:
    claims = [claim(1, 1) for _ in range(4)]
    ledger.ledger_reserve(claims)
    for c in claims:
        ledger.ledger_renew(c.lease, ttl=-1)
    assert len(ledger.ledger_expired(limit=3)) == 3
    assert set(ledger.ledger_expired()) == {c.lease for c in claims}


def test_concurrent_reservations_never_exceed_the_capacity(settings: Any) -> None:
    settings.MAX_CPU_UNITS = 50
    settings.MAX_MEMORY_MB = 100_000
    ledger.ledger_rebuild([])
    granted: list[Claim] = []
    observed: list[int] = []
    double_frees: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def reserve_many(worker: int) -> None:
        start.wait()
        for i in range(40):
            wanted = claim(1 + (worker + i) % 3, 10)
            if ledger.ledger_reserve([wanted])[0]:
                with lock:
                    granted.append(wanted)
            if i % 5 == 4:  # release some, so capacity churns while others reserve
                with lock:
                    mine = granted.pop() if granted else None
                if mine is not None and ledger.ledger_release([mine.lease]) != 1:
                    double_frees.append(mine.lease)
            observed.append(ledger.ledger_usage().cpu_units)

    threads = [threading.Thread(target=reserve_many, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert len(observed) == 8 * 40, "a thread died"
    assert max(observed) <= 50
    assert max(observed) >= 48, "the test never filled the ledger: it proves nothing"
    assert double_frees == []
    held = ledger.ledger_leases()
    assert set(held) == {c.lease for c in granted}
    assert sum(cpu for cpu, _ in held.values()) <= 50
    assert ledger.ledger_usage().cpu_units == sum(c.cpu_units for c in granted)
    assert ledger.ledger_usage().memory_mb == sum(c.memory_mb for c in granted)


# --- reconciliation with PostgreSQL ---------------------------------------------------------


def _admit(job: Job) -> Job:
    """Admit ``job`` through the real dispatcher; returns it fresh (queued, attempt 1)."""
    admission.dispatch()
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    return job


@pytest.mark.django_db
@pytest.mark.usefixtures("capacity")
def test_reconcile_frees_leases_of_jobs_that_hold_none(job_factory: Any) -> None:
    queued = _admit(job_factory(cpu_units=1))
    finished = job_factory(cpu_units=1)
    granted = ledger.ledger_reserve(
        [
            claim(1, lease=ledger.lease_id(uuid.uuid4(), 1)),  # no such job
            claim(1, lease=ledger.lease_id(finished.id, 1)),  # a pending job holds nothing
            claim(1, lease=ledger.lease_id(queued.id, 7)),  # an old attempt of a queued job
        ]
    )
    assert granted == [True, True, True]
    assert ledger.ledger_usage().cpu_units == 4
    assert reconcile_ledger() == 3
    assert ledger.ledger_leases() == {ledger.lease_id(queued.id, 1): (1, 128)}
    assert ledger.ledger_usage().cpu_units == 1
    assert reconcile_ledger() == 0


@pytest.mark.django_db
@pytest.mark.usefixtures("capacity")
def test_reconcile_rebuilds_when_a_running_job_is_missing_from_the_ledger(job_factory: Any) -> None:
    job = _admit(job_factory(cpu_units=2, memory_mb=256))
    move_to(job, JobStatus.RUNNING)
    lease = ledger.lease_id(job.id, 1)
    stray = ledger.lease_id(uuid.uuid4(), 1)
    ledger.ledger_release([lease])  # Redis lost it (e.g. a partial restore)
    ledger.ledger_reserve([claim(1, lease=stray)])
    assert ledger.ledger_leases() == {stray: (1, 100)}

    reconcile_ledger()

    assert ledger.ledger_leases() == {lease: (2, 256)}
    usage = ledger.ledger_usage()
    assert (usage.cpu_units, usage.memory_mb) == (2, 256)
    # A running lease expires unless renewed (a queued one would not).
    assert ledger.ledger_expired() == []
    assert ledger.ledger_expired(now=time.time() + 10**6) == [lease]


@pytest.mark.django_db
@pytest.mark.usefixtures("capacity")
def test_reconcile_does_not_add_back_the_lease_of_a_job_that_ended_between_its_reads(
    job_factory: Any, monkeypatch: Any
) -> None:
    # The reconcile reads Redis, then PostgreSQL. A job admitted after the first read is seen
    # queued by the second; if it then runs, ends and frees its lease before the reconcile
    # repairs what it took for missing, adding the lease back would book capacity for a job
    # that holds none.
    job = _admit(job_factory(cpu_units=2))
    lease = ledger.lease_id(job.id, 1)
    ledger.ledger_release([lease])  # as the first read saw it: not booked yet
    real_read = recovery.leased_jobs

    def read_then_the_job_ends() -> list[recovery.Leased]:
        seen = real_read()
        move_to(job, JobStatus.COMPLETED)  # its worker settles it (and frees its lease)
        return seen

    monkeypatch.setattr(recovery, "leased_jobs", read_then_the_job_ends)

    reconcile_ledger()

    assert ledger.ledger_leases() == {}
    assert ledger.ledger_usage().cpu_units == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("capacity")
def test_reconcile_leaves_a_missing_lease_whose_job_another_transaction_holds(
    job_factory: Any,
) -> None:
    # A row locked by another transaction (a worker settling it) is skipped, its lease left
    # for the next tick, which sees how that transaction ended.
    job = _admit(job_factory(cpu_units=1))
    lease = ledger.lease_id(job.id, 1)
    ledger.ledger_release([lease])
    locked, done = threading.Event(), threading.Event()

    def hold_the_row() -> None:
        from django.db import connection, transaction

        with transaction.atomic():
            Job.objects.select_for_update().get(id=job.id)
            locked.set()
            done.wait(30)
        connection.close()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    try:
        assert locked.wait(30)
        reconcile_ledger()
        assert ledger.ledger_leases() == {}
    finally:
        done.set()
        holder.join()
    reconcile_ledger()
    assert ledger.ledger_leases() == {lease: (1, 128)}
