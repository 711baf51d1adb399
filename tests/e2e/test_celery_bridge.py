"""The Celery bridge against a live platform: ``@shared_task`` functions on ``DraconicTask``
keep their bodies and call sites; ``.delay()``/``.apply_async()`` create Draconic jobs on
commit, run by the project's own Draconic worker (``manage.py draconic_worker``, a separate
process: ``tests.e2e.djt_live``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from draconic_sdk import Client
from draconic_sdk.celery_bridge import (
    BridgeError,
    DraconicResult,
    ensure_rate_limits,
    rate_limit_rules,
)
from jobs.models import Job as JobRow
from jobs.models import Limit, Priority
from tests.e2e import djt_live, djt_tasks
from tests.e2e.sdk_live import Live

pytestmark = pytest.mark.e2e
bridged = djt_live.bridged  # the fixture

TIMEOUT = 120  # a hang guard for a broken platform, not a performance assertion


class Rollback(Exception):
    pass


def test_delay_in_a_transaction_is_sent_on_commit_and_a_rollback_sends_nothing(
    bridged: Live, tmp_path: Path
) -> None:
    with transaction.atomic():
        sent = djt_tasks.flaky_total.delay([1, 2, 3], 0, str(tmp_path / "a"))
        assert isinstance(sent, DraconicResult) and sent.id
        assert not JobRow.objects.filter(id=sent.id).exists()
    with pytest.raises(Rollback), transaction.atomic():
        lost = djt_tasks.flaky_total.apply_async(
            kwargs={"values": [9], "failures": 0, "path": str(tmp_path / "b")}
        )
        raise Rollback
    assert sent.get(timeout=TIMEOUT) == 6 and sent.state == "SUCCESS"
    stored = JobRow.objects.get(id=sent.id)
    assert stored.type == "tests.e2e.djt_tasks.flaky_total"
    assert stored.payload == {"values": [1, 2, 3], "failures": 0, "path": str(tmp_path / "a")}
    assert not JobRow.objects.filter(id=lost.id).exists() and JobRow.objects.count() == 1
    assert not (tmp_path / "b").exists()
    assert stored.worker.startswith("djt/djt-worker")  # the project's own worker ran it


def test_autoretry_for_and_max_retries_become_draconic_attempts(
    bridged: Live, tmp_path: Path
) -> None:
    recovers = djt_tasks.flaky_total.delay([5, 5], 2, str(tmp_path / "recovers"))
    gives_up = djt_tasks.flaky_total.delay([1], 3, str(tmp_path / "gives_up"))
    assert recovers.get(timeout=TIMEOUT) == 10
    assert JobRow.objects.get(id=recovers.id).attempt == 3
    with pytest.raises(BridgeError, match="failed: ConnectionError"):
        gives_up.get(timeout=TIMEOUT)
    assert gives_up.state == "FAILURE"
    job = JobRow.objects.get(id=gives_up.id)
    assert job.max_attempts == 3 and job.attempt == 3  # max_retries=2: three attempts
    assert len((tmp_path / "gives_up").read_text().splitlines()) == 3


def test_countdown_eta_and_priority_map_to_the_job(bridged: Live) -> None:
    later = (timezone.now() + timedelta(hours=3)).replace(microsecond=0)
    by_eta = djt_tasks.label.apply_async(("A-1",), eta=later, priority=0, queue="labels")
    by_countdown = djt_tasks.label.apply_async(kwargs={"sku": "B-2"}, countdown=3600)
    eta_job, countdown_job = (JobRow.objects.get(id=r.id) for r in (by_eta, by_countdown))
    assert eta_job.run_at == later and eta_job.priority == Priority.CRITICAL
    assert eta_job.timeout_seconds == 20 and eta_job.max_attempts == 1  # soft_time_limit
    assert countdown_job.run_at is not None
    assert countdown_job.run_at - countdown_job.created_at >= timedelta(seconds=3590)
    assert countdown_job.priority == Priority.NORMAL and by_eta.state == "PENDING"


def test_canvas_and_unknown_options_are_refused_with_what_to_do(bridged: Live) -> None:
    with pytest.raises(BridgeError, match="Graph"):
        djt_tasks.label.apply_async(("A",), link=djt_tasks.label.s("B"))
    with pytest.raises(BridgeError, match="expires"):
        djt_tasks.label.apply_async(("A",), expires=60)
    with pytest.raises(BridgeError, match="UUID"):
        djt_tasks.label.apply_async(("A",), task_id="order-7")
    with pytest.raises(BridgeError, match="JSON"):
        djt_tasks.label.delay(object())
    assert JobRow.objects.count() == 0


def test_rate_limit_becomes_a_limit_rule_created_with_a_staff_token(bridged: Live) -> None:
    rules = rate_limit_rules([djt_tasks.label, djt_tasks.flaky_total])
    assert rules == {"type:tests.e2e.djt_tasks.label": "30/m"}
    with Client(bridged.url, bridged.token) as user:
        report = ensure_rate_limits(user, rules)
    assert report.for_operator == rules and not Limit.objects.exists()
    with Client(bridged.url, bridged.staff_token) as staff:
        assert ensure_rate_limits(staff, rules).created == list(rules)
        assert ensure_rate_limits(staff, rules).unchanged == list(rules)
    assert Limit.objects.get(key="type:tests.e2e.djt_tasks.label").rate == "30/m"
