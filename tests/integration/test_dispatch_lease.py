"""The dispatch lease (``jobs.engine.fence``) and what replaced the session advisory lock:
a holder that lost its lease books nothing, a request made while another holds the lease is
served once the lease is free, and the ledger reconcile, which now runs beside admission,
neither frees the lease of a job an admission has locked nor drops what others booked."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, transaction

from jobs.api.submit import job_submit
from jobs.engine import admission, fence, ledger, recovery, wakeup
from jobs.models import Job, JobStatus
from jobs.redis_client import get_redis
from tests.factories import make_spec

pytestmark = pytest.mark.django_db(transaction=True)


def submit(user: Any, **spec: Any) -> Job:
    job, _ = job_submit(owner=user, spec=make_spec(**spec))
    return job


def take_lease_elsewhere() -> None:
    """Another process holds the lease (with a token of its own)."""
    get_redis().set(fence.lease_key(), "999999:1@elsewhere", px=60_000)


def test_a_holder_whose_lease_expired_books_nothing(user: Any) -> None:
    ledger.ledger_rebuild([])
    claim = ledger.Claim(lease=ledger.lease_id(submit(user).id, 1), cpu_units=1, memory_mb=1)
    with fence.hold() as got:
        assert got
        take_lease_elsewhere()  # ours expired and someone else took it
        with pytest.raises(fence.Fenced):
            ledger.ledger_reserve_all([claim])
        with pytest.raises(fence.Fenced):
            fence.keep()
    assert ledger.ledger_leases() == {}
    assert fence.holder() == (999999, "1@elsewhere")  # ours was not let go: not ours


def test_a_reserve_under_the_lease_renews_it(user: Any, settings: Any) -> None:
    """Admission renews its lease with each page's reserve, not with a call of its own."""
    settings.DRACONIC_DISPATCH_LEASE_SECONDS = 60  # half of it outlasts any stall of the test
    ledger.ledger_rebuild([])
    claim = ledger.Claim(lease=ledger.lease_id(submit(user).id, 1), cpu_units=1, memory_mb=1)
    with fence.hold() as got:
        assert got
        # Left with a fraction of its lifetime (long enough that a stalled test process does
        # not see it expire first); the reserve gives it its whole lifetime back.
        short = fence._ttl_ms() // 2
        get_redis().pexpire(fence.lease_key(), short)
        assert ledger.ledger_reserve([claim]) == [True]
        assert get_redis().pttl(fence.lease_key()) > short
    assert fence.holder() is None  # let go at the end, as before


def test_outside_a_lease_the_ledger_is_not_fenced(user: Any) -> None:
    ledger.ledger_rebuild([])
    take_lease_elsewhere()
    claim = ledger.Claim(lease=ledger.lease_id(submit(user).id, 1), cpu_units=1, memory_mb=1)
    assert ledger.ledger_reserve([claim]) == [True]


def test_a_request_made_while_another_holds_the_lease_is_served_when_it_expires(
    user: Any,
) -> None:
    job = submit(user)
    take_lease_elsewhere()
    assert admission.dispatch() == 0  # the holder would see the flag before it lets go...
    assert get_redis().exists(wakeup.dirty_key())
    get_redis().delete(fence.lease_key())  # ...but it froze, and its lease expired
    assert admission.dispatch() == 1
    assert Job.objects.get(id=job.id).status == JobStatus.QUEUED
    assert fence.holder() is None  # let go after the pass


def test_a_pass_that_loses_its_lease_stops_and_hands_the_request_on(
    user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    submit(user)
    original = admission.admit_ready

    def lose_then_admit() -> int:
        take_lease_elsewhere()  # frozen past the lease between two pages
        return original()

    monkeypatch.setattr(admission, "admit_ready", lose_then_admit)
    assert admission.dispatch() == 0
    assert Job.objects.filter(status=JobStatus.QUEUED).count() == 0
    assert ledger.ledger_leases() == {}
    assert get_redis().exists(wakeup.dirty_key())  # the next holder serves it


def test_reconcile_leaves_the_lease_of_a_job_an_admission_holds_locked(user: Any) -> None:
    """An admission between its reserve and its commit: the job is still pending in
    PostgreSQL, its lease is in Redis and its row is locked. The reconcile must not free it."""
    ledger.ledger_rebuild([])
    job = submit(user)
    lease = ledger.lease_id(job.id, job.attempt + 1)
    locked, release = threading.Event(), threading.Event()

    def admission_in_flight() -> None:
        try:
            with transaction.atomic():
                Job.objects.select_for_update().get(id=job.id)
                assert ledger.ledger_reserve(
                    [ledger.Claim(lease=lease, cpu_units=1, memory_mb=1)]
                ) == [True]
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=admission_in_flight)
    thread.start()
    try:
        assert locked.wait(30)
        assert recovery.reconcile_ledger() == 0
        assert lease in ledger.ledger_leases()
    finally:
        release.set()
        thread.join(30)
    # Once the admission rolled back (it never committed queued), the lease is stray.
    assert recovery.reconcile_ledger() == 1
    assert ledger.ledger_leases() == {}


def test_reconcile_adds_a_missing_lease_and_keeps_the_others(user: Any) -> None:
    ledger.ledger_rebuild([])
    jobs = [submit(user), submit(user)]
    assert admission.dispatch() == 2
    leases = {
        ledger.lease_id(j.id, j.attempt) for j in Job.objects.filter(id__in=[j.id for j in jobs])
    }
    assert set(ledger.ledger_leases()) == leases
    before = ledger.ledger_usage()
    lost = sorted(leases)[0]
    ledger.ledger_release([lost])  # Redis lost one of them
    with fence.hold():
        assert recovery.reconcile_ledger() == 0
    assert set(ledger.ledger_leases()) == leases
    after = ledger.ledger_usage()
    assert (after.cpu_units, after.memory_mb) == (before.cpu_units, before.memory_mb)
