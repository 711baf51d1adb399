"""A worker lost between its start and its first lease renewal: a regression that the chaos
run found (``tests/chaos``)."""

from __future__ import annotations

from jobs.api.submit import job_submit
from jobs.engine import admission, ledger
from jobs.engine.sweeps import scheduler_tick
from jobs.engine.transitions import start_attempt
from jobs.models import Job, JobStatus
from tests.factories import make_spec
from tests.harness import wait_until


def test_a_worker_lost_between_its_start_and_its_first_lease_renewal_is_settled(
    transactional_db, user, settings
):
    """Found by the chaos run: a worker SIGKILLed right after its ``queued -> running`` commit,
    before its first lease renewal, left the job running forever, because the lease kept the
    never-expiring expiry of a queued job and no sweep looked at it."""
    settings.DRACONIC_LEASE_SECONDS = 1
    # A backoff no tick can reach: with the suite's 0.2 s, the same tick that settles the
    # attempt could admit the retry (the job queued, not retrying) on a slow machine.
    settings.DRACONIC_RETRY_BASE_SECONDS = settings.DRACONIC_RETRY_MAX_SECONDS = 3600
    job, _ = job_submit(owner=user, spec=make_spec(type="noop", max_attempts=3))
    assert admission.admit_ready() == 1
    # The worker's job_start commits, then the worker dies before ledger_renew.
    assert start_attempt(job_id=job.id, attempt=1, worker="w9@gone") is not None

    def settled() -> bool:
        scheduler_tick()
        return Job.objects.get(id=job.id).status != JobStatus.RUNNING

    wait_until(settled, timeout=60, interval=0.2, message="the lost attempt to be settled")
    job.refresh_from_db()
    assert job.status == JobStatus.RETRYING
    assert job.logs.get(to_status=JobStatus.RETRYING).context["reason"] == "worker_lost"
    assert ledger.lease_id(job.id, 1) not in ledger.ledger_leases()  # released after the commit
