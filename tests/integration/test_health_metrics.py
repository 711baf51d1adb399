"""GET /admin/health, GET /admin/metrics, GET /metrics (Prometheus), worker heartbeats and
Flower's basic auth, against the real PostgreSQL, Redis and (where marked) Celery processes."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from admin_api import metrics
from draconic.celery import app as celery_app
from jobs.engine import ledger
from jobs.models import DeadLetter, Job, JobStatus, Priority
from tests.factories import db_now
from tests.harness import free_port, wait_until
from workers import liveness


def health(client: Any) -> tuple[int, dict[str, Any]]:
    response = client.get("/admin/health")
    return response.status_code, response.json()


# --- health ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_health_needs_staff(api, anon_api):
    assert anon_api.get("/admin/health").status_code == 401
    assert api.get("/admin/health").status_code == 403


@pytest.mark.django_db
def test_health_is_503_naming_workers_when_no_worker_is_alive(staff_api):
    ledger.ledger_rebuild([])
    status, body = health(staff_api)
    assert status == 503
    assert body["failing"] == ["workers"]
    assert body["checks"]["workers"]["ok"] is False
    assert body["checks"]["workers"]["alive"] == 0
    for name in ("postgres", "broker", "ledger", "channel_layer"):
        assert body["checks"][name]["ok"] is True, body
        assert body["checks"][name]["latency_ms"] >= 0


@pytest.mark.django_db
def test_health_is_200_with_a_heartbeat_and_a_ledger(staff_api):
    ledger.ledger_rebuild([])
    liveness.beat_once("w1@test", {"pid": 1})
    status, body = health(staff_api)
    assert status == 200, body
    assert body == {"status": "ok", "failing": [], "checks": body["checks"]}
    assert body["checks"]["workers"]["alive"] == 1
    assert body["checks"]["workers"]["hostnames"] == ["w1@test"]


@pytest.mark.django_db
def test_health_reports_a_missing_ledger(staff_api):
    liveness.beat_once("w1@test", {})
    status, body = health(staff_api)
    assert status == 503
    assert body["failing"] == ["ledger"]
    assert "missing" in body["checks"]["ledger"]["error"]


@pytest.mark.django_db
def test_health_names_an_unreachable_broker_and_channel_layer(staff_api, settings):
    ledger.ledger_rebuild([])
    liveness.beat_once("w1@test", {})
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings.CELERY_BROKER_URL = dead
    layer = settings.CHANNEL_LAYERS["default"]
    settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": {**layer["CONFIG"], "hosts": [dead]}}}
    status, body = health(staff_api)
    assert status == 503
    assert body["failing"] == ["broker", "channel_layer"]
    assert body["checks"]["broker"]["error"]
    assert body["checks"]["channel_layer"]["error"]


# --- heartbeats ---------------------------------------------------------------------------


def test_a_heartbeat_counts_until_it_expires_or_is_forgotten():
    liveness.beat_once("a@host", {"pid": 10}, ttl=60)
    liveness.beat_once("b@host", {"pid": 11}, ttl=60)
    beats = liveness.alive_workers()
    assert [b.hostname for b in beats] == ["a@host", "b@host"]
    assert beats[0].info["pid"] == 10
    # b's last beat, with a short TTL (given first, a stall before the read above expired it).
    liveness.beat_once("b@host", {"pid": 11}, ttl=1)
    wait_until(
        lambda: [b.hostname for b in liveness.alive_workers()] == ["a@host"], message="b to expire"
    )
    liveness.forget("a@host")
    assert liveness.alive_workers() == []


def test_a_stopped_beat_is_not_written_back_by_a_beat_under_way(monkeypatch):
    """The worker's shutdown stops its beat while the thread is writing one: the worker is
    gone once ``stop`` returns, not alive for another ttl."""
    real, writing, go_on = liveness.beat_once, threading.Event(), threading.Event()

    def slow_beat(hostname: str, info: dict[str, Any], *, ttl: float | None = None) -> None:
        writing.set()
        go_on.wait(10)  # the write lands after stop() began
        real(hostname, info, ttl=ttl)

    monkeypatch.setattr(liveness, "beat_once", slow_beat)
    beat = liveness.LivenessBeat("w1@test", {"pid": 1})
    beat.start()
    assert writing.wait(10)
    timer = threading.Timer(0.3, go_on.set)
    timer.start()
    beat.stop()
    beat.join(10)
    timer.join()
    assert not beat.is_alive()
    assert liveness.alive_workers() == []


# --- metrics -----------------------------------------------------------------------------


def _set(job: Job, **fields: Any) -> None:
    """Test setup only: put a job straight into a state, as if it had lived through it."""
    Job.objects.filter(id=job.id).update(**fields)


@pytest.fixture
def world(job_factory, user) -> dict[str, Any]:
    """Jobs in known states, dead letters, queued messages, a ledger lease and a worker."""
    # The metrics' clock (PostgreSQL's now(), here the test transaction's start, which can be
    # seconds earlier than timezone.now()): retry_due is due by it, whatever the machine.
    now = db_now()
    parent = job_factory(priority="high")  # pending, ready
    job_factory(priority="low", depends_on=[parent])  # pending, waits for its parent
    retry_later = job_factory(priority="normal")
    _set(retry_later, status=JobStatus.RETRYING, next_attempt_at=now + timedelta(hours=1))
    retry_due = job_factory(priority="critical")
    _set(retry_due, status=JobStatus.RETRYING, next_attempt_at=now - timedelta(seconds=1))
    # Completed: three in the last minute (waits 1, 2, 3 s; runs 10, 20, 30 s), one 30 min
    # ago (wait 4 s, run 40 s), one two hours ago (outside every window).
    for ago, wait, run in [(10, 1, 10), (10, 2, 20), (10, 3, 30), (1800, 4, 40), (7200, 5, 50)]:
        done = now - timedelta(seconds=ago)
        started = done - timedelta(seconds=run)
        job = job_factory(priority="normal")
        _set(
            job,
            status=JobStatus.COMPLETED,
            created_at=started - timedelta(seconds=wait),
            started_at=started,
            completed_at=done,
        )
    for reason, requeued in [
        ("timeout", None),
        ("timeout", None),
        ("max_attempts", None),
        ("max_attempts", now),
    ]:
        failed = job_factory(priority="low")
        _set(failed, status=JobStatus.FAILED)
        DeadLetter.objects.create(job=failed, reason=reason, requeued_at=requeued)
    for queue, priority in [("high", None), ("high", None), ("low", None), ("normal", 5)]:
        celery_app.send_task("draconic.execute_job", args=["x", 1], queue=queue, priority=priority)
    ledger.ledger_rebuild([("lease:1", 2, 256, float("inf"))])
    liveness.beat_once("w1@test", {})
    return {"user": user}


@pytest.mark.django_db
def test_metrics_needs_staff(api):
    assert api.get("/admin/metrics").status_code == 403


@pytest.mark.django_db
def test_metrics_report_jobs_queues_resources_dlq_throughput_and_percentiles(world, staff_api):
    response = staff_api.get("/admin/metrics")
    assert response.status_code == 200
    body = response.json()
    assert body["jobs_by_status"] == {
        "pending": 2,
        "queued": 0,
        "running": 0,
        "retrying": 2,
        "completed": 5,
        "failed": 4,
        "cancelled": 0,
    }
    assert body["jobs_by_priority"] == {"critical": 1, "high": 1, "normal": 6, "low": 5}
    assert body["jobs_waiting_for_resources"] == 2
    assert body["jobs_waiting_for_resources_by_priority"] == {
        "critical": 1,
        "high": 1,
        "normal": 0,
        "low": 0,
    }
    assert body["queue_depth"] == {"critical": 0, "high": 2, "normal": 1, "low": 1}
    assert body["dead_letters_by_reason"] == {"timeout": 2, "max_attempts": 1}
    assert body["dead_letters_open"] == 3
    assert body["throughput"] == {"last_minute": 3, "last_hour": 4}
    assert body["queue_wait_last_hour"] == {
        "count": 4,
        "p50_seconds": 2.5,
        "p95_seconds": pytest.approx(3.85),
    }
    assert body["run_time_last_hour"] == {
        "count": 4,
        "p50_seconds": 25.0,
        "p95_seconds": pytest.approx(38.5),
    }
    assert body["resources"] == {
        "cpu_units": {"used": 2, "capacity": 8},
        "memory_mb": {"used": 256, "capacity": 4096},
        "leases": 1,
    }
    assert body["workers"] == {"alive": 1, "hostnames": ["w1@test"]}


@pytest.mark.django_db
def test_metrics_on_an_empty_platform_have_no_percentiles(staff_api):
    body = staff_api.get("/admin/metrics").json()
    assert body["throughput"] == {"last_minute": 0, "last_hour": 0}
    assert body["queue_wait_last_hour"] == {"count": 0, "p50_seconds": None, "p95_seconds": None}
    assert body["workers"] == {"alive": 0, "hostnames": []}


def _bulk_jobs(user: Any, n: int) -> None:
    statuses = [JobStatus.PENDING, JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.RETRYING]
    now = timezone.now()
    Job.objects.bulk_create(
        Job(
            owner=user,
            type="noop",
            priority=i % 4,
            status=statuses[i % 4],
            started_at=now - timedelta(seconds=2),
            completed_at=now - timedelta(seconds=1),
        )
        for i in range(n)
    )


@pytest.mark.django_db
def test_metrics_cost_the_same_queries_for_10_and_500_jobs(
    staff_api, user, django_assert_max_num_queries
):
    _bulk_jobs(user, 10)
    with CaptureQueriesContext(connection) as small:
        assert staff_api.get("/admin/metrics").status_code == 200
    _bulk_jobs(user, 490)
    with django_assert_max_num_queries(len(small)):
        body = staff_api.get("/admin/metrics").json()
    assert sum(body["jobs_by_status"].values()) == 500
    assert len(small) <= 5  # the token lookup plus the four metrics queries


@pytest.mark.django_db
def test_the_completed_window_query_uses_the_completed_at_index(user):
    _bulk_jobs(user, 2000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE jobs_job")
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("EXPLAIN " + metrics._COMPLETED_WINDOW)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")
    assert "job_completed_at_idx" in plan, plan


# --- Prometheus ---------------------------------------------------------------------------


def scrape(
    client: Any, **headers: str
) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    families = {}
    for family in text_string_to_metric_families(response.content.decode()):
        families[family.name] = {
            (s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples
        }
    return families


@pytest.mark.django_db
def test_prometheus_figures_match_the_database(world, anon_api):
    families = scrape(anon_api)
    jobs = families["draconic_jobs"]
    for status in JobStatus.values:
        expected = Job.objects.filter(status=status).count()
        assert jobs[("draconic_jobs", (("status", status),))] == expected
    by_priority = families["draconic_jobs_by_priority"]
    for p in Priority:
        expected = Job.objects.filter(priority=p).count()
        assert by_priority[("draconic_jobs_by_priority", (("priority", p.label),))] == expected
    assert families["draconic_queue_depth"][("draconic_queue_depth", (("queue", "high"),))] == 2
    assert (
        families["draconic_dead_letters"][("draconic_dead_letters", (("reason", "timeout"),))] == 2
    )
    assert families["draconic_workers_alive"][("draconic_workers_alive", ())] == 1
    assert (
        families["draconic_resource_used"][("draconic_resource_used", (("resource", "cpu_units"),))]
        == 2
    )
    window = families["draconic_jobs_completed_window"]
    assert window[("draconic_jobs_completed_window", (("window", "1m"),))] == 3
    assert window[("draconic_jobs_completed_window", (("window", "1h"),))] == 4


@pytest.mark.django_db
def test_prometheus_histograms_bucket_the_last_hour(world, anon_api):
    families = scrape(anon_api)
    wait = families["draconic_queue_wait_seconds"]
    assert wait[("draconic_queue_wait_seconds_bucket", (("le", "1.0"),))] == 1
    assert wait[("draconic_queue_wait_seconds_bucket", (("le", "2.5"),))] == 2
    assert wait[("draconic_queue_wait_seconds_bucket", (("le", "5.0"),))] == 4
    assert wait[("draconic_queue_wait_seconds_bucket", (("le", "+Inf"),))] == 4
    run = families["draconic_run_time_seconds"]
    assert run[("draconic_run_time_seconds_bucket", (("le", "30.0"),))] == 3
    quantiles = families["draconic_run_time_seconds_quantile"]
    assert quantiles[("draconic_run_time_seconds_quantile", (("quantile", "0.5"),))] == 25.0


@pytest.mark.django_db
def test_prometheus_needs_the_bearer_token_when_one_is_set(anon_api, settings):
    settings.METRICS_TOKEN = "s3cret-token"
    assert anon_api.get("/metrics").status_code == 401
    assert anon_api.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert (
        anon_api.get("/metrics", headers={"Authorization": "Basic s3cret-token"}).status_code == 401
    )
    assert "draconic_jobs" in scrape(anon_api, Authorization="Bearer s3cret-token")
