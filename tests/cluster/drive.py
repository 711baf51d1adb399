"""The load and the verdict of ``make cluster``: a submitter thread posts the plan's batches
through the balancer (keeping at most a fifth of the plan unfinished), the feed follows
``/jobs/stream``, the faults fire as the work gets done, and at the end the invariants of
``make chaos`` are checked together with the cluster's own."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.chaos.experiment import Chaos, revive, status_counts
from tests.chaos.plan import TERMINAL
from tests.chaos.verify import Verdict, evidence, explain, verify
from tests.cluster import cpu, topology
from tests.cluster.client import TENANTS, Feed, Submitter
from tests.cluster.faults import Faults, say

LIMIT_KEY, LIMIT_CONCURRENCY = "tenant:*", 2


@dataclass
class Outcome:
    submitter: Submitter
    feed: Feed
    faults: Faults
    finished: bool
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU per job of each kind
    expected: dict[str, str] = field(default_factory=dict)  # plan key -> expected outcome
    require_failover: bool = False  # a frozen scheduler must not stop admission
    submit_errors: list[str] = field(default_factory=list)


def submit_all(
    chaos: Chaos, submitter: Submitter, done: list[int], errors: list[str], duration: float
) -> None:
    """Submit the batches spread evenly over ``duration`` seconds (so the faults meet a steady
    load), waiting while more than a fifth of the plan is unfinished."""
    total, batches = chaos.plan.total, chaos.plan.batches
    backlog = max(100, total // 5)
    first, start = 0, time.monotonic()
    try:
        for number, batch in enumerate(batches):
            while len(submitter.ids) - done[
                0
            ] >= backlog or time.monotonic() < start + number * duration / len(batches):
                time.sleep(0.1)
            submitter.submit_batch(batch, first)
            first += len(batch)
            chaos.submitted_batches += 1
    except Exception as exc:
        errors.append(repr(exc))


def drive(
    chaos: Chaos,
    *,
    token: str,
    faults: list[tuple[float, str]],
    lease: float,
    netem_seconds: float,
    duration: float,
    timeout: float,
    require_failover: bool,
) -> Outcome:
    """Run the load for about ``duration`` seconds, each fault at its fraction of it. With
    ``require_failover``, a scheduler freeze during which nothing was admitted is a failure."""
    base = topology.lb_url()
    submitter = Submitter(base, token, run_id=uuid.uuid4().hex[:8], ids=chaos.ids)
    submitter.post("/admin/limits/", {"key": LIMIT_KEY, "max_concurrency": LIMIT_CONCURRENCY})
    feed = Feed(base.replace("http:", "ws:") + f"/jobs/stream?token={token}")
    feed.start()
    injector = Faults(chaos.fleet, lease=lease, netem_seconds=netem_seconds)
    injector.submitting = lambda: submitter.in_flight > 0
    outcome = Outcome(
        submitter,
        feed,
        injector,
        finished=False,
        expected=chaos.plan.expected,
        require_failover=require_failover,
    )
    done = [0]
    thread = threading.Thread(
        target=submit_all,
        args=(chaos, submitter, done, outcome.submit_errors, duration),
        daemon=True,
    )
    thread.start()
    meter = cpu.Meter()
    outcome.finished = watch(chaos, outcome, thread, done, list(faults), duration, timeout, meter)
    injector.join()
    outcome.cpu_ms = meter.per_job(done[0])
    return outcome


def watch(
    chaos: Chaos,
    outcome: Outcome,
    submitting: threading.Thread,
    done: list[int],
    pending: list[tuple[float, str]],
    duration: float,
    timeout: float,
    meter: cpu.Meter,
) -> bool:
    """Start each fault in its turn and print the progress until every submitted job has
    ended (True), a submission was refused, or the hang guard (False)."""
    from django.db import DatabaseError, connection

    last_fault = last_print = 0.0
    start = time.monotonic()
    while time.monotonic() < start + timeout and not outcome.submit_errors:
        revive(chaos.fleet)
        try:
            counts = status_counts()
        except DatabaseError as exc:
            say(f"database unavailable to the driver: {exc}".strip())
            connection.close()
            time.sleep(1)
            continue
        done[0] = sum(counts[s] for s in TERMINAL)
        now = time.monotonic()
        busy = outcome.faults.busy()
        if (
            pending
            and not busy
            and now - last_fault >= 2
            and now - start >= pending[0][0] * duration
        ):
            outcome.faults.start(pending.pop(0)[1])
            last_fault = now
        if now - last_print >= 3:
            states = " ".join(
                f"{s}={counts[s]}" for s in ("pending", "queued", "running", "retrying")
            )
            say(
                f"t={chaos.elapsed():.0f}s terminal={done[0]}/{chaos.plan.total} {states} "
                f"submitted={len(chaos.ids)}"
            )
            last_print = now
            meter.tick()
        if not submitting.is_alive() and done[0] == len(chaos.ids) and not pending and not busy:
            return True
        time.sleep(0.5)
    return False


def feed_problems(outcome: Outcome, ids: dict[str, str]) -> list[str]:
    """Jobs whose terminal event the feed has not seen (given 30 s to catch up), or saw with
    another status than the database's."""
    from jobs.models import Job

    deadline = time.monotonic() + 30
    while outcome.feed.missing(ids) and time.monotonic() < deadline:
        time.sleep(0.5)
    outcome.feed.stop.set()
    statuses = dict(Job.objects.filter(id__in=list(ids.values())).values_list("id", "status"))
    wrong = [
        f"{job_id}: feed {outcome.feed.terminal[job_id]}, database {statuses[uuid.UUID(job_id)]}"
        for job_id in ids.values()
        if job_id in outcome.feed.terminal
        and outcome.feed.terminal[job_id] != statuses[uuid.UUID(job_id)]
    ]
    return [f"no terminal event for {j}" for j in outcome.feed.missing(ids)] + wrong


def cluster_problems(outcome: Outcome) -> dict[str, list[str]]:
    """The cluster's own invariants besides the chaos run's."""
    from jobs.models import Job

    fail_jobs = Job.objects.filter(id__in=list(outcome.submitter.fail_ids))
    cut = outcome.faults.cut_jobs
    finals = dict(Job.objects.filter(id__in=list(cut)).values_list("id", "attempt"))
    return {
        "feed": feed_problems(outcome, outcome.submitter.ids),
        "refused_unexpectedly": [
            k for k in outcome.submitter.refused if outcome.expected.get(k) != "cancelled"
        ],
        "fail_not_retried": [
            str(j.id) for j in fail_jobs if j.status == "completed" and j.attempt < 2
        ],
        "cut_not_rerun": [j for j, a in cut.items() if finals[uuid.UUID(j)] <= a],
        "fault_errors": outcome.faults.errors,
        "admission_stalled": outcome.faults.stalls if outcome.require_failover else [],
        "submit_errors": outcome.submit_errors,
    }


def report(chaos: Chaos, outcome: Outcome, run_log: Path, pool_mode: str) -> bool:
    """Print the invariants and the summary line; True when every one holds."""
    if not outcome.finished:
        say("hang guard: not every job ended in time")
    verdict: Verdict = verify(chaos, run_log)
    # The fail diagnostic type keeps no run log: its attempts are proved by the job's log.
    verdict.unrecorded = [j for j in verdict.unrecorded if j not in outcome.submitter.fail_ids]
    own = cluster_problems(outcome)
    if not verdict.passed:
        explain(verdict)
    for name, items in own.items():
        if items:
            say(f"{name}: {len(items)}; first: {items[:5]}")
    passed = verdict.passed and outcome.finished and not any(own.values())
    say(f"evidence: {evidence(chaos, run_log)}")
    say(
        f"evidence: submit_answers={dict(outcome.submitter.answers)} "
        f"refused_after_parent_failed={len(outcome.submitter.refused)} "
        f"submit_retries={outcome.submitter.retries} feed_events={outcome.feed.events} "
        f"feed_connects={outcome.feed.connects} cut_jobs={len(outcome.faults.cut_jobs)} "
        f"limit={LIMIT_KEY}x{LIMIT_CONCURRENCY} over {TENANTS} tenants"
    )
    say("cpu per job: " + " ".join(f"{k}={v:.2f}ms" for k, v in outcome.cpu_ms.items()))
    if outcome.faults.qdisc:
        say(f"worker_netem used: {outcome.faults.qdisc}")
    for line in outcome.faults.freezes:
        say(f"freeze: {line}")
    c, injected = verdict.counts, outcome.faults.done
    kinds = " ".join(f"{k}={n}" for k, n in sorted(injected.items()))
    say(
        f"hosts={len(topology.HOSTS)} jobs={len(chaos.ids)} completed={c['completed']} "
        f"failed={c['failed']} cancelled={c['cancelled']} faults={sum(injected.values())} ({kinds}) "
        f"lost={len(verdict.lost)} duplicates={len(verdict.duplicates)} "
        f"order_violations={len(verdict.order)} unexpected={len(verdict.unexpected)} "
        f"multi_terminal={len(verdict.multi_terminal)} unrecorded={len(verdict.unrecorded)} "
        f"feed_missing={len(own['feed'])} ledger_used={0 if not verdict.ledger else 1} "
        f"crashes={len(chaos.fleet.crashes)} pool_mode={pool_mode} "
        f"elapsed={chaos.elapsed():.0f}s -> {'PASS' if passed else 'FAIL'}"
    )
    return passed
