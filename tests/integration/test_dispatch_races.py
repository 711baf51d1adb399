"""Admission (``jobs.engine.admission``) under concurrency, and its ordering guarantees.

These tests commit for real (``transaction=True``) because dispatchers in several threads must
see each other's rows and locks. ``dispatch`` publishes Celery messages to this run's Redis
database; no worker consumes them, so the jobs stay ``queued`` and we assert on the database
and the ledger only."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from django.db import connection
from django.db.models import Count, Q, Sum

from jobs.api.submit import job_submit, job_submit_batch
from jobs.engine import admission, ledger
from jobs.engine.cancel import job_cancel
from jobs.models import DeadLetter, DeadLetterReason, ExecutionLog, Job, JobStatus
from jobs.redis_client import get_redis, key
from tests.factories import make_spec

pytestmark = pytest.mark.django_db(transaction=True)


def run_in_threads(targets: Sequence[Callable[[], int]]) -> list[int]:
    """Run each target in its own thread, all released at the same moment; returns results.

    Each thread closes its own database connection at the end. An exception in a thread fails
    the test (it is re-raised here)."""
    start = threading.Barrier(len(targets))
    results: list[int] = []
    errors: list[BaseException] = []

    def body(target: Callable[[], int]) -> None:
        try:
            start.wait()
            results.append(target())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=body, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a dispatcher thread hung"
    if errors:
        raise errors[0]
    return results


def submit(user: Any, **spec: Any) -> Job:
    job, _ = job_submit(owner=user, spec=make_spec(**spec))
    return job


def statuses(*jobs: Job) -> list[str]:
    fresh = {j.id: j.status for j in Job.objects.filter(id__in=[j.id for j in jobs])}
    return [fresh[j.id] for j in jobs]


def assert_ledger_matches_queued_jobs() -> None:
    """The ledger holds exactly one lease per queued job, for its current attempt."""
    queued = Job.objects.filter(status=JobStatus.QUEUED)
    usage = ledger.ledger_usage()
    totals = queued.aggregate(cpu=Sum("cpu_units"), mem=Sum("memory_mb"))
    assert usage.cpu_units == (totals["cpu"] or 0)
    assert usage.memory_mb == (totals["mem"] or 0)
    assert set(ledger.ledger_leases()) == {ledger.lease_id(j.id, j.attempt) for j in queued}


@pytest.fixture
def capacity_50(settings: Any) -> None:
    settings.MAX_CPU_UNITS = 50
    settings.MAX_MEMORY_MB = 1_000_000


def assert_each_queued_job_admitted_once(expected: int) -> None:
    queued = Job.objects.filter(status=JobStatus.QUEUED)
    assert queued.count() == expected
    assert set(queued.values_list("attempt", flat=True)) == {1}
    admissions = (
        ExecutionLog.objects.filter(from_status=JobStatus.PENDING, to_status=JobStatus.QUEUED)
        .values("job_id")
        .annotate(n=Count("id"))
    )
    per_job = {row["job_id"]: row["n"] for row in admissions}
    assert set(per_job) == set(queued.values_list("id", flat=True))
    assert set(per_job.values()) == {1}


@pytest.mark.usefixtures("capacity_50")
def test_four_concurrent_dispatchers_admit_each_job_once_up_to_capacity(user: Any) -> None:
    job_submit_batch(owner=user, specs=[make_spec(memory_mb=10) for _ in range(200)])

    admitted = run_in_threads([admission.dispatch] * 4)

    assert sum(admitted) == 50
    assert_each_queued_job_admitted_once(50)
    assert Job.objects.filter(status=JobStatus.PENDING).count() == 150
    assert_ledger_matches_queued_jobs()
    assert ledger.ledger_usage().leases == 50


@pytest.mark.usefixtures("capacity_50")
def test_passes_racing_without_the_dispatch_lease_still_never_double_admit(user: Any) -> None:
    """``SKIP LOCKED`` and the atomic ledger hold even if two passes overlap (a holder frozen
    past its dispatch lease wakes up mid-pass while the next holder runs one)."""
    job_submit_batch(owner=user, specs=[make_spec(memory_mb=10) for _ in range(200)])
    ledger.ledger_rebuild([])

    admitted = run_in_threads([admission.admit_ready] * 4)

    assert sum(admitted) == 50
    assert_each_queued_job_admitted_once(50)
    assert_ledger_matches_queued_jobs()


@pytest.mark.usefixtures("capacity_50")
def test_dispatchers_racing_with_submits_never_exceed_capacity(user: Any) -> None:
    def submit_and_dispatch() -> int:
        job_submit_batch(
            owner=user, specs=[make_spec(cpu_units=3, memory_mb=10) for _ in range(10)]
        )
        return admission.dispatch()

    run_in_threads([submit_and_dispatch] * 4)
    admission.dispatch()  # whatever a lost race left behind

    queued = Job.objects.filter(status=JobStatus.QUEUED).count()
    assert queued == 16  # 16 * 3 = 48 <= 50 < 17 * 3
    assert_each_queued_job_admitted_once(16)
    assert_ledger_matches_queued_jobs()


def test_higher_priorities_are_admitted_first(settings: Any, user: Any) -> None:
    settings.MAX_CPU_UNITS = 3
    jobs = [submit(user, priority=p) for p in ("low", "normal", "high", "critical")]

    assert admission.dispatch() == 3

    assert statuses(*jobs) == ["pending", "queued", "queued", "queued"]
    assert_ledger_matches_queued_jobs()


def test_jobs_of_one_priority_are_admitted_oldest_first(settings: Any, user: Any) -> None:
    settings.MAX_CPU_UNITS = 2
    jobs = [submit(user, priority="high") for _ in range(5)]

    admission.dispatch()

    assert statuses(*jobs) == ["queued", "queued", "pending", "pending", "pending"]


def test_admission_order_crosses_batches(settings: Any, user: Any) -> None:
    settings.MAX_CPU_UNITS = 5
    settings.DRACONIC_DISPATCH_BATCH = 2
    lows = [submit(user, priority="low") for _ in range(4)]
    criticals = [submit(user, priority="critical") for _ in range(3)]

    admission.dispatch()

    assert statuses(*criticals) == ["queued"] * 3
    assert statuses(*lows) == ["queued", "queued", "pending", "pending"]


def _hold_one_cpu(user: Any) -> Job:
    holder = submit(user, cpu_units=1)
    admission.dispatch()
    holder.refresh_from_db()
    assert holder.status == JobStatus.QUEUED
    return holder


def test_a_big_job_that_does_not_fit_does_not_block_smaller_ones(settings: Any, user: Any) -> None:
    settings.MAX_CPU_UNITS = 4
    _hold_one_cpu(user)
    big = submit(user, cpu_units=4)
    smalls = [submit(user, cpu_units=1) for _ in range(3)]

    admission.dispatch()

    assert statuses(big, *smalls) == ["pending", "queued", "queued", "queued"]
    assert ledger.ledger_usage().cpu_units == 4
    assert_ledger_matches_queued_jobs()


def test_a_starving_big_job_becomes_a_barrier_and_goes_first(settings: Any, user: Any) -> None:
    settings.MAX_CPU_UNITS = 4
    settings.DRACONIC_AGING_SECONDS = 0
    holder = _hold_one_cpu(user)
    big = submit(user, cpu_units=4)
    smalls = [submit(user, cpu_units=1) for _ in range(3)]

    admission.dispatch()

    assert statuses(big, *smalls) == ["pending"] * 4
    assert ledger.ledger_usage().cpu_units == 1

    job_cancel(job=holder)  # frees its CPU after commit
    assert ledger.ledger_usage().cpu_units == 0
    admission.dispatch()

    assert statuses(big, *smalls) == ["queued", "pending", "pending", "pending"]
    assert ledger.ledger_usage().cpu_units == 4
    assert_ledger_matches_queued_jobs()


def test_dispatch_rebuilds_a_lost_ledger_before_admitting(settings: Any, user: Any) -> None:
    settings.MAX_CPU_UNITS = 2
    first = _hold_one_cpu(user)
    get_redis().delete(*(key("ledger", k) for k in ("used", "leases", "expiry", "epoch")))
    waiting = [submit(user) for _ in range(3)]

    admission.dispatch()

    assert statuses(first, *waiting) == ["queued", "queued", "pending", "pending"]
    assert_ledger_matches_queued_jobs()
    assert Job.objects.filter(Q(status=JobStatus.QUEUED), ~Q(attempt=1)).count() == 0


def test_a_job_larger_than_a_shrunken_capacity_is_dead_lettered_not_waited_for(
    settings: Any, user: Any
) -> None:
    settings.MAX_CPU_UNITS = 8
    huge = submit(user, cpu_units=6)
    child = submit(user, cpu_units=1, depends_on=[huge])
    small = submit(user, cpu_units=1)
    settings.MAX_CPU_UNITS = 4  # the operator shrank the cluster after the submit

    admission.dispatch()

    assert statuses(huge, child, small) == ["failed", "cancelled", "queued"]
    letter = DeadLetter.objects.get(job=huge)
    assert letter.reason == DeadLetterReason.EXCEEDS_CAPACITY
    assert ledger.ledger_leases() == {ledger.lease_id(small.id, 1): (1, 128)}


@pytest.mark.usefixtures("capacity_50")
def test_cancels_racing_with_dispatch_leave_no_lease_behind(user: Any) -> None:
    jobs = job_submit_batch(owner=user, specs=[make_spec(memory_mb=10) for _ in range(120)])

    def cancel_all() -> int:
        for job in jobs:
            job_cancel(job=job)
        return 0

    def dispatch_repeatedly() -> int:
        return sum(admission.dispatch() for _ in range(30))

    admitted = run_in_threads([cancel_all, dispatch_repeatedly, dispatch_repeatedly])

    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.CANCELLED}
    assert ledger.ledger_usage().leases == 0
    assert ledger.ledger_usage().cpu_units == 0
    # Every admission that happened was of a distinct job, each at most once.
    admissions = ExecutionLog.objects.filter(to_status=JobStatus.QUEUED)
    assert admissions.count() == sum(admitted)
    assert admissions.values("job_id").distinct().count() == sum(admitted)
