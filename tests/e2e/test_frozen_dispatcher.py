"""No single stuck process stalls admission (issue 16): two real schedulers and a worker; the
scheduler that holds the dispatch lease is frozen with SIGSTOP, and the jobs submitted while
it is frozen are all admitted and run by the others. After SIGCONT the frozen one finds its
lease gone (its fenced ledger writes refused), nothing was double-booked, and every job ended
in exactly one terminal state."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Count, Q

from jobs.engine import fence, ledger
from jobs.models import ExecutionLog, Job, JobStatus
from tests.harness import Supervisor, wait_until

LEASE_SECONDS = "2"
TERMINAL = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


def process_state(pid: int) -> str:
    """The one-letter state of ``pid`` from /proc (``T``: stopped)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0]


def freeze_the_holder(pids: set[int]) -> tuple[int, int]:
    """SIGSTOP whichever of ``pids`` holds the dispatch lease, caught holding it: stop the
    holder seen, then make sure the lease still carries the token it held (else it let go in
    between: let it go on and try again). Returns ``(pid, token)``."""

    def caught() -> tuple[int, int] | None:
        seen = fence.holder()
        if seen is None or int(seen[1].split("@")[0]) not in pids:
            return None
        token, pid = seen[0], int(seen[1].split("@")[0])
        os.kill(pid, signal.SIGSTOP)
        still = fence.holder()
        if still is not None and still[0] == token:
            return pid, token
        os.kill(pid, signal.SIGCONT)
        return None

    found: tuple[int, int] = wait_until(
        caught, timeout=120, interval=0.005, message="a scheduler holding the lease"
    )
    return found


def submit(api: Any, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        body = {"type": "noop", "payload": {"seconds": 0.05}}
        response = api.post("/jobs/", body, format="json")
        assert response.status_code == 201, response.content
        ids.append(str(response.json()["id"]))
    return ids


class Booking:
    """Samples of what holds capacity, each checked against the capacity as it is taken."""

    def __init__(self) -> None:
        self.samples = 0

    def check(self) -> None:
        usage = ledger.ledger_usage()
        leased = Job.objects.filter(status__in=(JobStatus.QUEUED, JobStatus.RUNNING)).count()
        assert usage.cpu_units <= settings.MAX_CPU_UNITS, usage
        assert leased <= settings.MAX_CPU_UNITS, leased  # each noop takes one CPU unit
        self.samples += 1


def all_ended(ids: list[str], booking: Booking) -> bool:
    booking.check()
    return Job.objects.filter(id__in=ids, status__in=TERMINAL).count() == len(ids)


def test_a_frozen_lease_holder_does_not_stall_admission(platform: Supervisor, api: Any) -> None:
    platform.start_worker(concurrency=2)
    for name in ("scheduler-a", "scheduler-b"):
        platform.start_scheduler(name, DRACONIC_DISPATCH_LEASE_SECONDS=LEASE_SECONDS)
    schedulers = {platform.pid("scheduler-a"), platform.pid("scheduler-b")}
    warm = submit(api, 2)
    booking = Booking()
    wait_until(lambda: all_ended(warm, booking), timeout=120, message=platform.logs())

    frozen, token = freeze_the_holder(schedulers)
    try:
        during = submit(api, 40)
        wait_until(
            lambda: all_ended(during, booking),
            timeout=180,
            interval=0.1,
            message=f"jobs admitted while {frozen} is frozen",
        )
        # All of them were admitted and ran while the holder stayed frozen: by the others.
        assert process_state(frozen) == "T"
        holder = fence.holder()
        assert holder is None or holder[0] > token  # the lease moved on, with a new token
    finally:
        os.kill(frozen, signal.SIGCONT)

    after = submit(api, 20)  # the woken one rejoins; nothing it does now books twice
    wait_until(lambda: all_ended(after, booking), timeout=180, interval=0.1)
    for name in ("scheduler-a", "scheduler-b", "worker"):
        platform.check(name)

    ids = [*warm, *during, *after]
    # Nothing double-booked: the ledger holds exactly the leases of queued or running jobs.
    # The schedulers stop first, so no reconcile frees a stray lease behind our back; the
    # worker frees each job's lease just after its final commit, so that is waited for.
    for name in ("scheduler-a", "scheduler-b"):
        platform.stop(name)
    assert not Job.objects.filter(status__in=(JobStatus.QUEUED, JobStatus.RUNNING)).exists()
    wait_until(
        lambda: not ledger.ledger_leases(),
        timeout=30,
        interval=0.05,
        message="the ledger to hold no lease once every job ended",
    )
    assert ledger.ledger_usage().cpu_units == 0
    assert booking.samples > 0
    # Each job ended once: one terminal log row, one attempt, completed.
    ends = (
        ExecutionLog.objects.filter(job_id__in=ids, to_status__in=TERMINAL)
        .values("job_id")
        .annotate(n=Count("id"))
    )
    assert sorted(e["n"] for e in ends) == [1] * len(ids)
    done = Job.objects.filter(Q(id__in=ids), status=JobStatus.COMPLETED, attempt=1)
    assert done.count() == len(ids)
