"""The example project (``examples/django_shop``), a Django project of its own with its own
SQLite database, run as its README says.

The project checks, migrates and lists the three job types its worker serves, in processes of
its own; its rolled-back enqueues never reach Draconic; and end to end, with the project's own
Draconic worker (``manage.py draconic_worker``, an external pool on its own database), the
three types run, write the shop's model, and their results are read back.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.e2e import djt_live
from tests.harness import ROOT, Supervisor, wait_until

pytestmark = pytest.mark.e2e

SHOP = ROOT / "examples" / "django_shop"
TYPES = ["shop.tasks.restock", "shop.celery_tasks.print_labels", "shop.jobs.stock_report"]
TIMEOUT = 180  # a hang guard for a broken platform, not a performance assertion


def shop_env(database: Path, **extra: str) -> dict[str, str]:
    """The shop's environment: its settings, its database, this branch's SDK."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE"))}
    paths = [str(ROOT / "sdk" / "src"), os.environ.get("PYTHONPATH", "")]
    env.update(
        DJANGO_SETTINGS_MODULE="shop_project.settings",
        SHOP_DATABASE=str(database),
        PYTHONPATH=os.pathsep.join(p for p in paths if p),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def manage(env: dict[str, str], *argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *argv],
        cwd=SHOP,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"manage.py {' '.join(argv)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_example_checks_migrates_and_lists_its_three_job_types(tmp_path: Path) -> None:
    env = shop_env(tmp_path / "shop.sqlite3")
    manage(env, "check")
    manage(env, "migrate", "--no-input", "-v0")
    tables = sqlite3.connect(tmp_path / "shop.sqlite3").execute(
        "SELECT name FROM sqlite_master WHERE name = 'shop_product'"
    )
    assert tables.fetchall() == [("shop_product",)]  # its own database, not Draconic's
    described = {t["name"]: t for t in json.loads(manage(env, "shop_types"))}
    assert list(described) == TYPES
    assert described["shop.tasks.restock"]["payload_schema"]["required"] == ["sku", "count"]
    assert described["shop.tasks.restock"]["defaults"] == {"priority": "high"}  # priority=10
    labels = described["shop.celery_tasks.print_labels"]
    assert labels["defaults"] == {"max_attempts": 3, "timeout_seconds": 30}
    assert labels["retry"]["retry_on"] == ["django.db.utils.OperationalError"]
    assert described["shop.jobs.stock_report"]["payload_schema"]["properties"] == {
        "threshold": {"type": "integer", "default": 5},
        "count_seconds": {"type": "number", "default": 0.0},
    }


def test_the_examples_rolled_back_enqueues_never_reach_draconic(
    platform: Supervisor, user: Any, staff_user: Any, tmp_path: Path
) -> None:
    """Runs today: a rolled-back enqueue sends nothing, so the server need not know the shop's
    types. Had either been sent, the server would have refused it (400, an unknown type) and
    the command would have failed."""
    from jobs.models import Job as JobRow

    live = djt_live.start_server(platform, user, staff_user)
    env = shop_env(tmp_path / "shop.sqlite3", DRACONIC_URL=live.url, DRACONIC_TOKEN=live.token)
    manage(env, "migrate", "--no-input", "-v0")
    ids = json.loads(manage(env, "shop_demo", "--rollback"))
    assert set(ids) == {"restock", "labels"} and all(ids.values())
    assert not JobRow.objects.exists()
    stock = dict(
        sqlite3.connect(tmp_path / "shop.sqlite3").execute("SELECT sku, stock FROM shop_product")
    )
    assert stock == {"MUG-1": 9, "TEA-1": 2}


# --- end to end, with the shop's own worker -------------------------------------------------


def worker_token(pool: str) -> str:
    """A worker token scoped to ``pool``, as ``manage.py createpooltoken`` makes it."""
    from jobs.pools.services import pool_token_create

    return pool_token_create(pool=pool)


def test_the_example_runs_end_to_end_with_its_own_worker(
    platform: Supervisor, user: Any, staff_user: Any, tmp_path: Path
) -> None:
    live = djt_live.start_server(platform, user, staff_user)
    database = tmp_path / "shop.sqlite3"
    env = shop_env(
        database,
        DRACONIC_URL=live.url,
        DRACONIC_TOKEN=live.token,
        DRACONIC_WORKER_TOKEN=worker_token("shop"),
        DRACONIC_BROKER_URL=settings.CELERY_BROKER_URL,
    )
    # As its README runs it: `make run` (migrate, then the worker) and, once the pool is
    # registered, `make demo`, with the environment of its step 2.
    make = ["make", "--no-print-directory", "-C", str(SHOP), f"PYTHON={sys.executable}"]
    platform.start("shop-worker", [*make, "run"], env)
    types = _job_types_served(live)
    assert set(TYPES) <= set(types) and all(types[t]["pool"] == "shop" for t in TYPES)
    _assert_payload_schemas_shown(live, types)

    # Rolled back: nothing sent. Committed: the three run and write the shop's model.
    from jobs.models import Job as JobRow

    rolled_back = json.loads(manage(env, "shop_demo", "--rollback"))
    demo = subprocess.run(
        [*make, "demo"], env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert demo.returncode == 0, f"make demo:\n{demo.stdout}\n{demo.stderr}"
    report = json.loads(demo.stdout.strip().splitlines()[-1])  # after make's and migrate's lines
    assert not JobRow.objects.filter(id__in=list(rolled_back.values())).exists()
    assert report["restock"]["status"] == "SUCCESSFUL" and report["restock"]["return_value"] == 7
    assert len(report["restock"]["worker_ids"]) == 1
    assert report["labels"] == {"id": report["labels"]["id"], "status": "completed", "result": 3}
    assert report["report"]["result"] == {"low": [], "total_stock": 16}
    stock = dict(sqlite3.connect(database).execute("SELECT sku, stock FROM shop_product"))
    assert stock == {"MUG-1": 9, "TEA-1": 7}  # the jobs wrote the shop's own database
    assert JobRow.objects.count() == 3


def _job_types_served(live: Any) -> dict[str, Any]:
    import httpx

    def served() -> dict[str, Any] | None:
        answer = httpx.get(
            f"{live.url}/job-types/", headers={"Authorization": f"Token {live.token}"}
        )
        if answer.status_code != 200:
            return None
        body = answer.json()
        items = body.get("results", body) if isinstance(body, dict) else body
        found = {t["name"]: t for t in items}
        return found if set(TYPES) <= set(found) else None

    wait_until(lambda: served() is not None, timeout=TIMEOUT, message="the shop's pool to register")
    return served() or {}


def _assert_payload_schemas_shown(live: Any, types: dict[str, Any]) -> None:
    """``GET /job-types/`` and the OpenAPI schema show each of the shop's types with the
    payload schema its worker registered (from the functions' signatures)."""
    import httpx

    restock = types["shop.tasks.restock"]["payload_schema"]
    assert restock["required"] == ["sku", "count"]
    assert restock["properties"] == {"sku": {"type": "string"}, "count": {"type": "integer"}}
    labels = types["shop.celery_tasks.print_labels"]["payload_schema"]
    assert labels["required"] == ["sku"]
    assert labels["properties"]["copies"] == {"type": "integer", "default": 1}
    report = types["shop.jobs.stock_report"]["payload_schema"]
    assert report["properties"]["threshold"] == {"type": "integer", "default": 5}
    answer = httpx.get(
        f"{live.url}/api/schema/?format=json", headers={"Authorization": f"Token {live.token}"}
    )
    assert answer.status_code == 200, answer.text[:500]
    components = answer.json()["components"]["schemas"]
    for name in TYPES:
        documented = components[f"JobTypePayload.{name}"]
        assert documented["properties"] == types[name]["payload_schema"]["properties"], name
    payload = components["JobInputRequest"]["properties"]["payload"]
    assert {f"#/components/schemas/JobTypePayload.{n}" for n in TYPES} <= set(
        payload["x-payload-schemas"].values()
    )


# --- the shop's worker killed or frozen mid-job --------------------------------------------

#: Short leases, so a killed or frozen worker's attempt is given up on within seconds.
FAST = {"DRACONIC_LEASE_SECONDS": "2", "DRACONIC_POOL_LIVE_SECONDS": "4"}


@pytest.fixture
def shop(platform: Supervisor, api: Any, settings: Any, tmp_path: Path) -> dict[str, Any]:
    """Draconic (server and scheduler, short leases) and the shop's environment for its
    workers, its database migrated; the workers are the test's to start."""
    from tests.e2e.external_pool import start_web

    settings.DRACONIC_LEASE_SECONDS = 2
    settings.DRACONIC_POOL_LIVE_SECONDS = 4
    base = start_web(platform, **FAST)
    platform.start_scheduler(**FAST)
    database = tmp_path / "shop.sqlite3"
    env = shop_env(
        database,
        DRACONIC_URL=base,
        DRACONIC_WORKER_TOKEN=worker_token("shop"),
        DRACONIC_BROKER_URL=settings.CELERY_BROKER_URL,
    )
    manage(env, "migrate", "--no-input", "-v0")
    with sqlite3.connect(database) as db:  # the shop's stock, which the report reads
        db.executemany(
            "INSERT INTO shop_product (sku, name, stock, labels_printed) VALUES (?, ?, ?, 0)",
            [("MUG-1", "Mug", 2), ("TEA-1", "Tea", 7)],
        )
    return {"env": env, "database": database, "base": base}


def start_shop_worker(platform: Supervisor, shop: dict[str, Any], name: str) -> None:
    platform.start(name, [sys.executable, str(SHOP / "manage.py"), "draconic_worker"], shop["env"])
    wait_until(
        lambda: "registered" in platform.log_tail(name) or platform.check(name),
        timeout=TIMEOUT,
        message=f"{name} to register\n{platform.logs()}",
    )


def slow_report(api: Any) -> str:
    from tests.e2e.test_scheduling import submit

    body = {"threshold": 5, "count_seconds": 6}
    return str(submit(api, type="shop.jobs.stock_report", payload=body)["id"])


def wait_running(job_id: str, platform: Supervisor) -> None:
    from jobs.models import Job, JobStatus

    wait_until(
        lambda: Job.objects.filter(id=job_id, status=JobStatus.RUNNING, attempt=1).exists(),
        timeout=TIMEOUT,
        message=platform.logs(),
    )


def test_the_shops_worker_killed_mid_job_its_job_runs_again_once(
    platform: Supervisor, shop: dict[str, Any], api: Any
) -> None:
    from jobs.models import DeadLetterReason, ExecutionLog, JobStatus
    from tests.e2e.test_scheduling import wait_terminal

    start_shop_worker(platform, shop, "shop-doomed")
    job_id = slow_report(api)
    wait_running(job_id, platform)
    platform.kill("shop-doomed", signal.SIGKILL)
    start_shop_worker(platform, shop, "shop-rescuer")
    (job,) = wait_terminal([job_id], platform, timeout=TIMEOUT)
    assert (job.status, job.attempt) == (JobStatus.COMPLETED, 2), platform.logs()
    assert job.result == {"low": ["MUG-1"], "total_stock": 9}  # read from the shop's database
    starts = ExecutionLog.objects.filter(job_id=job_id, to_status=JobStatus.RUNNING)
    assert sorted(starts.values_list("attempt", flat=True)) == [1, 2]  # each attempt once
    lost = job.logs.get(to_status=JobStatus.RETRYING)
    assert lost.context["reason"] == DeadLetterReason.WORKER_LOST


def test_the_shops_worker_frozen_past_its_lease_has_its_late_result_refused(
    platform: Supervisor, shop: dict[str, Any], api: Any
) -> None:
    from jobs.models import ExecutionLog, Job, JobStatus
    from tests.e2e.test_scheduling import wait_terminal

    start_shop_worker(platform, shop, "shop-sleepy")
    job_id = slow_report(api)
    wait_running(job_id, platform)
    sleepy = platform.pid("shop-sleepy")  # its session's group: the main process and its child
    os.killpg(sleepy, signal.SIGSTOP)
    try:
        wait_until(
            lambda: Job.objects.filter(id=job_id, attempt__gte=2).exists(),
            timeout=TIMEOUT,
            message=platform.logs(),
        )
        start_shop_worker(platform, shop, "shop-rescuer")
        (job,) = wait_terminal([job_id], platform, timeout=TIMEOUT)
    finally:
        os.killpg(sleepy, signal.SIGCONT)
    assert (job.status, job.attempt) == (JobStatus.COMPLETED, 2), platform.logs()
    # Thawed, the worker reports its attempt's outcome (a result, or the failure its lost lease
    # turned into); the server refuses it: 409, nothing changed.
    late = re.compile(r'"POST /workers/attempts/(complete|fail)" 409')
    wait_until(
        lambda: late.search(platform.log_tail("web", 50000)) is not None,
        timeout=TIMEOUT,
        message=platform.logs(),
    )
    job.refresh_from_db()
    assert (job.status, job.attempt) == (JobStatus.COMPLETED, 2)  # the late result changed nothing
    completions = ExecutionLog.objects.filter(job_id=job_id, to_status=JobStatus.COMPLETED)
    assert list(completions.values_list("attempt", flat=True)) == [2]


def test_the_shops_worker_token_cannot_touch_another_pools_job_or_read_the_jobs(
    platform: Supervisor, shop: dict[str, Any], api: Any
) -> None:
    from jobs.models import Job, JobStatus
    from tests.e2e.external_pool import call, start_pool_worker
    from tests.e2e.test_scheduling import submit

    start_shop_worker(platform, shop, "shop-worker")
    # A job of another pool ("ext", the SDK's test pool), running on that pool's worker.
    other = worker_token("ext")
    start_pool_worker(platform, "ext-worker", shop["base"], other)
    wait_until(
        lambda: "registered" in platform.log_tail("ext-worker") or platform.check("ext-worker"),
        timeout=TIMEOUT,
        message=platform.logs(),
    )
    job_id = submit(api, type="ext.wait", payload={"seconds": 60})["id"]
    wait_until(
        lambda: Job.objects.filter(id=job_id, status=JobStatus.RUNNING).exists(),
        timeout=TIMEOUT,
        message=platform.logs(),
    )
    token, base = shop["env"]["DRACONIC_WORKER_TOKEN"], shop["base"]
    forged = {"job_id": job_id, "attempt": 1, "result": {"forged": True}}
    assert call(base, token, "POST", "/workers/attempts/complete", forged)[0] == 403
    assert call(base, token, "GET", "/jobs/")[0] == 403
    assert call(base, token, "GET", f"/jobs/{job_id}")[0] == 403
    assert Job.objects.get(id=job_id).status == JobStatus.RUNNING
