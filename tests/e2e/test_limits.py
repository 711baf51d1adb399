"""Limits and fairness end to end: real worker and scheduler processes, real Redis and
PostgreSQL. What is measured comes from the jobs' own timestamps in PostgreSQL (``started_at``,
``completed_at``) and from samples of the ledger; ``wait_until`` timeouts are hang guards only,
and nothing here asserts how long the test itself took."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection

from jobs.api.submit import job_submit_batch
from jobs.engine import limits
from jobs.models import Job, JobStatus, Limit
from jobs.redis_client import get_redis
from tests.factories import make_spec
from tests.harness import wait_until
from workers import liveness

pytestmark = pytest.mark.e2e

TERMINAL = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


def submit_many(owner: Any, count: int, **spec: Any) -> list[str]:
    """``count`` jobs in batches of 1,000 (the API's largest)."""
    ids: list[str] = []
    while len(ids) < count:
        n = min(1000, count - len(ids))
        ids += [str(j.id) for j in job_submit_batch(owner=owner, specs=[make_spec(**spec)] * n)]
    return ids


def wait_terminal(ids: list[str], platform: Any, timeout: float = 180) -> list[Job]:
    def done() -> list[Job] | None:
        jobs = list(Job.objects.filter(id__in=ids, status__in=TERMINAL))
        return jobs if len(jobs) == len(ids) else None

    return wait_until(done, timeout=timeout, message=f"{len(ids)} jobs to end\n{platform.logs()}")


def wait_ready(platform: Any, *names: str) -> None:
    """Block until the workers ``names`` consume (each one's liveness beat starts on Celery's
    ``worker_ready``): what a test measures across workers must not include one still
    starting up while the other already runs the jobs."""

    def ready() -> bool:
        return {b.hostname.split("@")[0] for b in liveness.alive_workers()} >= set(names)

    wait_until(ready, timeout=120, message=f"workers {names} to be ready\n{platform.logs()}")


def most_at_once(jobs: list[Job]) -> int:
    """The most of ``jobs`` whose running windows (started_at to completed_at) overlap."""
    edges = sorted(
        [(j.started_at, 1) for j in jobs] + [(j.completed_at, -1) for j in jobs],
        key=lambda e: (e[0], e[1]),  # an end before a start at the same instant
    )
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


class LedgerSampler:
    """Samples the ledger's counters of some limit names in a thread, until stopped."""

    def __init__(self, names: list[str]) -> None:
        self.names, self.samples = names, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LedgerSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(limits.limit_counts(self.names))
            self._stop.wait(0.01)


def test_a_type_rate_limit_holds_across_two_workers(platform, user, settings):
    settings.MAX_CPU_UNITS = 16
    Limit.objects.create(key="type:noop", rate="10/s")
    platform.start_worker("w1", concurrency=2)
    platform.start_worker("w2", concurrency=2)
    platform.start_scheduler()
    # Both workers consume before the first job is admitted: jobs admitted while they start
    # would pile up (up to the capacity) and start in a burst longer than the first second's.
    wait_ready(platform, "w1", "w2")
    ids = submit_many(user, 380, type="noop")
    started = wait_until(
        lambda: (
            (n := Job.objects.filter(id__in=ids, started_at__isnull=False).count()) >= 345 and n
        ),
        timeout=180,
        message=platform.logs(),
    )
    assert started
    starts = sorted(
        Job.objects.filter(id__in=ids).exclude(started_at=None).values_list("started_at", flat=True)
    )
    # Past the first second's burst (the bucket starts full), 30 s of steady state.
    begin = starts[0] + timedelta(seconds=2)
    end = begin + timedelta(seconds=30)
    in_window = sum(1 for s in starts if begin <= s < end)
    assert 270 <= in_window <= 330, f"{in_window} starts in 30 s for a rule of 10/s"
    workers = set(
        Job.objects.filter(id__in=ids).exclude(worker="").values_list("worker", flat=True)
    )
    assert {w.split("@")[0] for w in workers} >= {"w1", "w2"}, workers


def test_a_tenant_concurrency_limit_holds_while_other_tenants_flow(platform, user, settings):
    settings.MAX_CPU_UNITS = 16
    Limit.objects.create(key="tenant:*", max_concurrency=2)
    platform.start_worker("w1", concurrency=4)
    platform.start_worker("w2", concurrency=4)
    platform.start_scheduler()
    # Both workers consume before the jobs come: with one still starting up, the other's 4
    # processes would run everything, and no more than 4 could run at once.
    wait_ready(platform, "w1", "w2")
    payload = {"seconds": 0.5}
    with LedgerSampler(["tenant:a", "tenant:b", "tenant:c"]) as sampler:
        a = submit_many(user, 12, type="noop", payload=payload, concurrency_key="tenant:a")
        b = submit_many(user, 12, type="noop", payload=payload, concurrency_key="tenant:b")
        free = submit_many(user, 12, type="noop", payload=payload)
        jobs = wait_terminal([*a, *b, *free], platform)
    assert {j.status for j in jobs} == {JobStatus.COMPLETED}
    assert sampler.samples and max(max(s) for s in sampler.samples) <= 2
    assert max(s[0] for s in sampler.samples) == 2  # the limit was reached, and held
    by_id = {str(j.id): j for j in jobs}
    assert most_at_once([by_id[i] for i in a]) <= 2
    assert most_at_once([by_id[i] for i in b]) <= 2
    # Meanwhile the others kept flowing: more ran at once than one tenant's limit allows,
    # and tenant b's and the unkeyed jobs started before tenant a's backlog was through.
    assert most_at_once(jobs) > 4
    last_a_start = max(by_id[i].started_at for i in a)
    assert min(by_id[i].started_at for i in b) < last_a_start
    assert sum(by_id[i].started_at < last_a_start for i in free) >= 6


def test_limits_hold_after_a_redis_flush(platform, user, settings):
    settings.MAX_CPU_UNITS = 16
    Limit.objects.create(key="tenant:*", max_concurrency=1)
    platform.start_worker(concurrency=4)
    platform.start_scheduler()
    [first] = submit_many(user, 1, type="noop", payload={"seconds": 4}, concurrency_key="tenant:a")
    wait_until(
        lambda: Job.objects.filter(id=first, status=JobStatus.RUNNING).exists(),
        message=platform.logs(),
    )
    get_redis().flushdb()  # this test run's Redis database only: the ledger and the broker
    rest = submit_many(user, 3, type="noop", payload={"seconds": 0.3}, concurrency_key="tenant:a")
    # The scheduler rebuilds the ledger from PostgreSQL, the running job's lease and its
    # limit counter with it, so the waiting ones start only as each one before them ends.
    wait_until(
        lambda: limits.limit_counts(["tenant:a"]) == [1],
        message=f"the counter to come back\n{platform.logs()}",
    )
    jobs = wait_terminal([first, *rest], platform)
    assert {j.status for j in jobs} == {JobStatus.COMPLETED}
    assert most_at_once(jobs) == 1
    by_id = {str(j.id): j for j in jobs}
    assert all(by_id[i].started_at >= by_id[first].completed_at for i in rest)


def test_a_tenants_jobs_start_while_another_has_a_backlog_of_2000(
    platform, user, other_user, settings
):
    settings.MAX_CPU_UNITS = 4
    platform.start_scheduler()
    backlog = submit_many(user, 2000, type="noop")
    late = submit_many(other_user, 10, type="noop")
    # The worker starts once the late ones are in: the scheduler has admitted what fits of
    # the backlog meanwhile (4 CPU units' worth), but none of it ran. A worker already up
    # would run the backlog while its 2,000 are still being submitted, ahead of the late ones
    # by nothing the dispatcher decides.
    platform.start_worker(concurrency=2)
    jobs = wait_terminal(late, platform)
    assert {j.status for j in jobs} == {JobStatus.COMPLETED}
    last_late_start = max(j.started_at for j in jobs)
    with connection.cursor():
        ahead = Job.objects.filter(id__in=backlog, started_at__lt=last_late_start).count()
    # Round-robin: about one of the backlog per late job, plus what was admitted before the
    # late ones came (at most the 4 CPU units' worth), not the backlog's 2,000.
    assert ahead <= 40, f"{ahead} of the backlog started before the last of the 10"
    assert Job.objects.filter(id__in=backlog, started_at=None).count() >= 1900


def test_a_rate_held_job_starts_when_its_token_is_due_not_at_the_next_tick(
    platform, user, settings
):
    settings.MAX_CPU_UNITS = 16
    Limit.objects.create(key="type:noop", rate="2/s")
    platform.start_worker(concurrency=2)
    platform.start_scheduler(DRACONIC_SCHEDULER_TICK_SECONDS="60")
    ids = submit_many(user, 8, type="noop")
    # A hang guard only: a job held for the scheduler's tick (60 s) shows as a gap below.
    jobs = wait_terminal(ids, platform)
    # Admission times (a worker still starting up would bunch the start times).
    admitted = sorted(j.queued_at for j in jobs)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(admitted)]
    # Two at once (the bucket's burst), then one per token, each at most a few tenths late:
    # nothing waited for a tick.
    assert max(gaps) < 5, gaps
    assert (admitted[-1] - admitted[0]).total_seconds() >= 2.5  # 6 tokens at 2/s: the rule held
