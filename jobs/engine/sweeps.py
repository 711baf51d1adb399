"""The scheduler's tick: the safety net under the event-driven paths. Each sweep finds what
an event should have settled and did not (a lost worker, a lost message, a handler that
ignored its cancel, a ledger Redis lost) and settles it. Safe to run twice (everything runs
under the dispatcher's advisory lock, and every change is a fenced compare-and-swap)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import DateTimeField, ExpressionWrapper, F
from django.utils import timezone

from jobs.engine import admission, ledger, recovery
from jobs.engine.attempts import job_fail_attempt
from jobs.engine.cancel import cancel_running_attempt
from jobs.engine.interrupted import job_settle_lost
from jobs.engine.publish import Delivery, celery_task_id, publish
from jobs.models import DeadLetterReason, Job, JobStatus
from jobs.rollups.sweep import rollup_sweep

logger = logging.getLogger("draconic.scheduler")


@dataclass
class TickReport:
    ran: bool = False
    ledger_rebuilt: bool = False
    leases_freed: int = 0
    lost_attempts: int = 0
    republished: int = 0
    terminated: int = 0
    admitted: int = 0
    rolled_up: int = 0


def scheduler_tick() -> TickReport:
    report = TickReport()
    with admission.dispatch_lock() as got:
        if got:
            report.ran = True
            if not ledger.ledger_is_present():
                recovery.rebuild_ledger()
                report.ledger_rebuilt = True
            else:
                report.leases_freed = recovery.reconcile_ledger()
            report.lost_attempts = sweep_expired_leases()
            report.republished = republish_stale_queued()
            report.terminated = terminate_cancelled_running()
            report.lost_attempts += sweep_overdue_running()
            report.admitted = admission.admit_ready()
    report.admitted += admission.dispatch()
    # Outside the dispatcher's lock (it must not hold up admission): idempotent on its own.
    report.rolled_up = rollup_sweep().buckets
    return report


def sweep_expired_leases() -> int:
    """Running attempts whose worker stopped renewing their lease failed: the worker was lost
    (or killed by the hard time limit). Returns how many attempts it settled."""
    arm_unrenewed_leases()
    settled = 0
    for lease in ledger.ledger_expired():
        job_id, attempt = ledger.parse_lease(lease)
        settled += int(job_settle_lost(job_id=job_id, attempt=attempt, why="lease expired"))
    return settled


def arm_unrenewed_leases() -> int:
    """Give an expiry to the never-expiring lease of each running attempt. A worker renews its
    lease right after its ``queued -> running`` commit; one killed in between leaves the queued
    lease, which never expires, and the job would stay running forever. A live worker renews
    every third of the lease's lifetime, so arming its lease changes nothing for it. Returns
    how many leases it armed."""
    leases = {ledger.parse_lease(lease): lease for lease in ledger.ledger_unexpiring()}
    if not leases:
        return 0
    running = Job.objects.filter(
        id__in=[job_id for job_id, _ in leases], status=JobStatus.RUNNING
    ).values_list("id", "attempt")
    armed = [leases[(str(i), a)] for i, a in running if (str(i), a) in leases]
    return sum(ledger.ledger_renew(lease) for lease in armed)


def republish_stale_queued() -> int:
    """Re-publish jobs queued for longer than ``DRACONIC_REQUEUE_AFTER_SECONDS`` (their message
    was lost). A duplicate message is harmless: only one delivery can start the attempt."""
    cutoff = timezone.now() - timedelta(seconds=settings.DRACONIC_REQUEUE_AFTER_SECONDS)
    stale = [
        Delivery(*row)
        for row in Job.objects.filter(status=JobStatus.QUEUED, queued_at__lt=cutoff)
        .order_by("priority", "created_at")
        .values_list("id", "attempt", "priority", "timeout_seconds", "type")[:1000]
    ]
    if not stale:
        return 0
    # Not a status change: only the time of the last publish moves.
    Job.objects.filter(id__in=[d.job_id for d in stale], status=JobStatus.QUEUED).update(
        queued_at=timezone.now()
    )
    logger.warning("re-publishing %d queued jobs that did not start", len(stale))
    publish(stale)
    return len(stale)


def terminate_cancelled_running() -> int:
    """Running jobs whose owner cancelled them and whose handler did not stop within
    ``DRACONIC_CANCEL_GRACE_SECONDS``: revoke the Celery task with terminate, then end the
    job ``cancelled``. A late result of the killed attempt is ignored (fenced by attempt)."""
    from draconic.celery import app

    cutoff = timezone.now() - timedelta(seconds=settings.DRACONIC_CANCEL_GRACE_SECONDS)
    stuck = list(
        Job.objects.filter(
            status=JobStatus.RUNNING, cancel_requested=True, updated_at__lt=cutoff
        ).values_list("id", "attempt")[:100]
    )
    ended = 0
    for job_id, attempt in stuck:
        try:
            app.control.revoke(celery_task_id(job_id, attempt), terminate=True, signal="SIGKILL")
        except Exception:
            logger.warning("could not revoke %s:%s", job_id, attempt, exc_info=True)
        ended += int(cancel_running_attempt(job_id=job_id, attempt=attempt))
    return ended


def sweep_overdue_running() -> int:
    """Running attempts past ``timeout_seconds`` plus the hard-limit grace and one lease: the
    time limits did not stop them (a pool without signals, a wedged worker) yet their lease
    may still be renewed. Revoke them with terminate and settle them as timed out."""
    from draconic.celery import app

    slack = settings.DRACONIC_TIMEOUT_GRACE_SECONDS + settings.DRACONIC_LEASE_SECONDS
    overdue = list(
        Job.objects.filter(status=JobStatus.RUNNING)
        .annotate(
            deadline=ExpressionWrapper(
                F("started_at") + (F("timeout_seconds") + slack) * timedelta(seconds=1),
                output_field=DateTimeField(),
            )
        )
        .filter(deadline__lt=timezone.now())
        .values_list("id", "attempt", "timeout_seconds")[:100]
    )
    settled = 0
    for job_id, attempt, timeout in overdue:
        try:
            app.control.revoke(celery_task_id(job_id, attempt), terminate=True, signal="SIGKILL")
        except Exception:
            logger.warning("could not revoke %s:%s", job_id, attempt, exc_info=True)
        error = f"attempt {attempt} ran past its timeout of {timeout}s and was terminated"
        if job_fail_attempt(
            job_id=job_id, attempt=attempt, error=error, reason=DeadLetterReason.TIMEOUT
        ):
            settled += 1
    return settled
