"""The worker API of external pools (``jobs.pools``) in-process: scoped tokens, the fenced
attempt calls, routing to the pool's queues, and a type no live pool serves."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from jobs.engine import ledger
from jobs.engine.admission import dispatch
from jobs.errors import JobConflict
from jobs.models import ExecutionLog, Job, JobStatus, WorkerPool, WorkerToken
from jobs.pools.services import pool_for_key, pool_register, pool_token_create
from jobs.redis_client import get_redis

RESIZE = {
    "name": "acme.resize",
    "description": "",
    "payload_schema": {
        "type": "object",
        "properties": {"width": {"type": "integer"}},
        "required": ["width"],
        "additionalProperties": False,
    },
    "defaults": {},
    "retry": None,
}


def worker_client(pool: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Worker {pool_token_create(pool=pool)}")
    return client


def register(client: APIClient, pool: str, *types: dict[str, Any]) -> Any:
    body = {"pool": pool, "worker": "w1", "concurrency": 2, "types": list(types or [RESIZE])}
    return client.post("/workers/pools/register", body, format="json")


@pytest.fixture
def acme() -> APIClient:
    client = worker_client("acme")
    assert register(client, "acme").status_code == 200
    return client


def submit_and_start(api: APIClient, worker: APIClient) -> tuple[str, int]:
    response = api.post("/jobs/", {"type": "acme.resize", "payload": {"width": 3}}, format="json")
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    dispatch()
    job = Job.objects.get(id=job_id)
    assert job.status == JobStatus.QUEUED
    body = {"job_id": job_id, "attempt": job.attempt, "worker": "w1"}
    started = worker.post("/workers/attempts/start", body, format="json")
    assert started.status_code == 200, started.content
    return job_id, job.attempt


@pytest.mark.django_db
def test_registration_answers_the_pool_queues_and_the_type_is_submittable(api, acme):
    response = register(acme, "acme")
    assert response.json()["queues"] == [f"acme.{p}" for p in ("critical", "high", "normal", "low")]
    bad = api.post("/jobs/", {"type": "acme.resize", "payload": {"width": "x"}}, format="json")
    assert bad.status_code == 400
    assert "payload.width" in str(bad.json()["payload"])


@pytest.mark.django_db
def test_a_pool_cannot_take_a_type_of_another_pool_or_of_the_deployment(acme):
    beta = worker_client("beta")
    assert register(beta, "beta").status_code == 409
    builtin = {**RESIZE, "name": "send_email"}
    assert register(beta, "beta", builtin).status_code == 409
    assert register(beta, "acme").status_code == 403  # its token is beta's


@pytest.mark.django_db(transaction=True)
def test_an_admitted_job_of_a_pool_type_is_published_to_the_pool_queue(api, acme):
    response = api.post("/jobs/", {"type": "acme.resize", "payload": {"width": 3}}, format="json")
    dispatch()
    assert Job.objects.get(id=response.json()["id"]).status == JobStatus.QUEUED
    assert get_redis().llen("acme.normal") == 1
    assert get_redis().llen("normal") == 0


@pytest.mark.django_db(transaction=True)
def test_a_pool_types_jobs_are_admitted_by_the_ledger_like_any_other(api, acme, settings):
    """Resource admission: a pool's job holds its CPU and memory while it is out; one that
    does not fit waits (capacity) until the first one's outcome frees them."""
    big = {"cpu_units": settings.MAX_CPU_UNITS, "memory_mb": 64}
    ids = [
        api.post(
            "/jobs/",
            {"type": "acme.resize", "payload": {"width": w}, "resource_requirements": big},
            format="json",
        ).json()["id"]
        for w in (1, 2)
    ]
    dispatch()
    first, second = (Job.objects.get(id=i) for i in ids)
    assert (first.status, second.status) == (JobStatus.QUEUED, JobStatus.PENDING)
    assert ledger.ledger_usage().cpu_units == settings.MAX_CPU_UNITS
    (reason,) = api.get(f"/jobs/{second.id}").json()["waiting_on"]
    assert reason["reason"] == "capacity"
    at = {"job_id": str(first.id), "attempt": first.attempt}
    started = acme.post("/workers/attempts/start", {**at, "worker": "w1"}, format="json")
    assert started.status_code == 200, started.content
    done = acme.post("/workers/attempts/complete", {**at, "result": 1}, format="json")
    assert done.status_code == 200, done.content
    assert ledger.ledger_usage().cpu_units == 0  # the outcome freed what the job held
    dispatch()
    assert Job.objects.get(id=second.id).status == JobStatus.QUEUED
    assert get_redis().llen("acme.normal") == 2  # both published to the pool's queue


@pytest.mark.django_db
def test_the_attempt_calls_are_fenced_and_log_progress_and_complete(api, acme):
    job_id, attempt = submit_and_start(api, acme)
    at = {"job_id": job_id, "attempt": attempt}
    renewed = acme.post("/workers/attempts/renew", at, format="json")
    assert renewed.json() == {"cancel_requested": False, "lease_held": True}
    log = acme.post("/workers/attempts/log", {**at, "message": "resizing"}, format="json")
    assert log.status_code == 200
    progress = acme.post("/workers/attempts/progress", {**at, "progress": 0.5}, format="json")
    assert progress.status_code == 200
    stale = {"job_id": job_id, "attempt": attempt + 1, "result": {"no": 1}}
    assert acme.post("/workers/attempts/complete", stale, format="json").status_code == 409
    done = acme.post("/workers/attempts/complete", {**at, "result": {"ok": 1}}, format="json")
    assert done.status_code == 200
    assert acme.post("/workers/attempts/complete", at, format="json").status_code == 409
    job = Job.objects.get(id=job_id)
    assert (job.status, job.result) == (JobStatus.COMPLETED, {"ok": 1})
    lines = ExecutionLog.objects.filter(job_id=job_id).values_list("message", "context")
    assert ("resizing", {}) in lines
    assert ("progress: 50%", {"progress": 0.5}) in lines


@pytest.mark.django_db
def test_a_stopping_worker_hands_its_attempt_back_uncharged_and_fenced_off(
    api, acme, django_capture_on_commit_callbacks
):
    job_id, attempt = submit_and_start(api, acme)
    lease = ledger.lease_id(job_id, attempt)
    assert lease in ledger.ledger_leases()
    body = {"job_id": job_id, "attempt": attempt, "worker": "w1"}
    with django_capture_on_commit_callbacks(execute=True):
        handed = acme.post("/workers/attempts/hand-back", body, format="json")
    assert (handed.status_code, handed.json()) == (200, {"status": JobStatus.PENDING})
    job = Job.objects.get(id=job_id)
    assert (job.status, job.attempt - job.attempt_offset) == (JobStatus.PENDING, 0)  # uncharged
    line = job.logs.get(to_status=JobStatus.PENDING, attempt=attempt)
    assert line.message.startswith("attempt 1 handed back: worker acme/w1 is shutting down")
    assert line.context["reason"] == "handed_back"
    assert lease not in ledger.ledger_leases()
    # The handed-back attempt is stale: its late result, or a second hand-back, changes nothing.
    late = {"job_id": job_id, "attempt": attempt, "result": {"late": True}}
    assert acme.post("/workers/attempts/complete", late, format="json").status_code == 409
    assert acme.post("/workers/attempts/hand-back", body, format="json").status_code == 409
    assert Job.objects.get(id=job_id).status == JobStatus.PENDING


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/workers/attempts/complete", "result", {"text": "a\u0000b"}),
        ("/workers/attempts/log", "context", {"a\u0000": 1}),
        ("/workers/attempts/progress", "progress", {"step": ["x\u0000"]}),
    ],
)
def test_a_json_value_jsonb_cannot_store_is_a_400_naming_its_field(api, acme, path, field, value):
    """Unchecked, the NUL reached PostgreSQL: a DataError, a 400 naming no field, which the
    SDK took for a crash (the attempt was later charged as worker_lost)."""
    job_id, attempt = submit_and_start(api, acme)
    body = {"job_id": job_id, "attempt": attempt, field: value}
    if field == "context":
        body["message"] = "a line"
    response = acme.post(path, body, format="json")
    assert response.status_code == 400, response.content
    assert "NUL" in str(response.json()[field])
    assert Job.objects.get(id=job_id).status == JobStatus.RUNNING


@pytest.mark.django_db
def test_another_worker_of_the_pool_cannot_hand_back_an_attempt_and_changes_nothing(api, acme):
    """Any worker of a pool holds the pool's token; before the hand-back matched the worker,
    w2 stopping could put w1's running job back to pending (to start a second time)."""
    job_id, attempt = submit_and_start(api, acme)  # started by w1
    before = Job.objects.get(id=job_id)
    lines = ExecutionLog.objects.filter(job_id=job_id).count()
    body = {"job_id": job_id, "attempt": attempt, "worker": "w2"}
    refused = acme.post("/workers/attempts/hand-back", body, format="json")
    assert refused.status_code == 409
    assert "another worker" in refused.json()["detail"]
    job = Job.objects.get(id=job_id)
    assert (job.status, job.attempt, job.attempt_offset, job.worker) == (
        JobStatus.RUNNING,
        before.attempt,
        before.attempt_offset,
        "acme/w1",
    )
    assert ExecutionLog.objects.filter(job_id=job_id).count() == lines
    assert ledger.lease_id(job_id, attempt) in ledger.ledger_leases()


@pytest.mark.django_db
def test_a_hand_back_of_a_job_whose_cancel_was_asked_cancels_it(api, acme):
    job_id, attempt = submit_and_start(api, acme)
    assert api.patch(f"/jobs/{job_id}/cancel").status_code == 200
    body = {"job_id": job_id, "attempt": attempt, "worker": "w1"}
    handed = acme.post("/workers/attempts/hand-back", body, format="json")
    assert handed.json() == {"status": JobStatus.CANCELLED}
    assert Job.objects.get(id=job_id).status == JobStatus.CANCELLED


@pytest.mark.django_db
def test_a_timeout_failure_is_recorded_as_one(api, acme, settings):
    job_id, attempt = submit_and_start(api, acme)
    body = {"job_id": job_id, "attempt": attempt, "error": "timed out", "timeout": True}
    response = acme.post("/workers/attempts/fail", body, format="json")
    assert response.json() == {"status": JobStatus.RETRYING}


@pytest.mark.django_db
def test_a_worker_token_is_refused_outside_the_worker_api_and_a_user_token_inside(api, acme):
    assert acme.get("/jobs/").status_code == 403
    assert acme.get("/admin/health").status_code == 403
    assert api.post("/workers/attempts/renew", {}, format="json").status_code == 403
    anonymous = APIClient().post("/workers/attempts/renew", {}, format="json")
    assert anonymous.status_code == 403


@pytest.mark.django_db
def test_another_pool_cannot_touch_or_read_the_job(api, acme):
    job_id, attempt = submit_and_start(api, acme)
    beta = worker_client("beta")
    assert register(beta, "beta", {**RESIZE, "name": "beta.other"}).status_code == 200
    at = {"job_id": job_id, "attempt": attempt}
    assert beta.post("/workers/attempts/complete", at, format="json").status_code == 403
    assert beta.post("/workers/attempts/renew", at, format="json").status_code == 403
    handing = {**at, "worker": "b1"}
    assert beta.post("/workers/attempts/hand-back", handing, format="json").status_code == 403
    assert beta.get(f"/jobs/{job_id}").status_code == 403
    assert Job.objects.get(id=job_id).status == JobStatus.RUNNING


@pytest.mark.django_db
def test_a_type_no_live_pool_serves_waits_without_blocking_and_shows_in_health(
    api, acme, staff_api, staff_user, client
):
    WorkerPool.objects.filter(name="acme").update(last_seen=timezone.now() - timedelta(days=1))
    held = api.post("/jobs/", {"type": "acme.resize", "payload": {"width": 3}}, format="json")
    other = api.post("/jobs/", {"type": "noop", "payload": {}}, format="json")
    dispatch()
    assert Job.objects.get(id=other.json()["id"]).status == JobStatus.QUEUED
    job_id = held.json()["id"]
    assert Job.objects.get(id=job_id).status == JobStatus.PENDING
    (reason,) = api.get(f"/jobs/{job_id}").json()["waiting_on"]
    assert reason["message"] == "no live worker pool serves type acme.resize"
    health = staff_api.get("/admin/health").json()["checks"]["pools"]
    assert health["unserved_types"] == {"acme.resize": "acme"}
    client.force_login(staff_user)
    page = client.get("/dashboard/")
    assert b'data-unserved-type="acme.resize"' in page.content
    # A heartbeat brings the pool back: the job is admitted.
    beat = acme.post("/workers/pools/heartbeat", {"pool": "acme", "worker": "w1"}, format="json")
    assert beat.status_code == 200
    dispatch()
    assert Job.objects.get(id=job_id).status == JobStatus.QUEUED


@pytest.mark.django_db
def test_a_revoked_worker_token_stops_working():
    worker = worker_client("gamma")
    beat = {"pool": "gamma", "worker": "g1"}
    assert worker.post("/workers/pools/heartbeat", beat, format="json").status_code == 200
    WorkerToken.objects.update(revoked_at=timezone.now())
    assert worker.post("/workers/pools/heartbeat", beat, format="json").status_code == 401


@pytest.mark.django_db
def test_the_command_prints_a_working_token():
    out = io.StringIO()
    call_command("createpooltoken", "epsilon", stdout=out)
    key = out.getvalue().strip()
    assert WorkerPool.objects.get(name="epsilon").tokens.count() == 1
    assert pool_for_key(key) == WorkerPool.objects.get(name="epsilon")
    assert pool_for_key(key + "x") is None


@pytest.mark.django_db
def test_the_revoke_command_ends_a_pools_tokens_one_or_all_and_no_others():
    keys = [pool_token_create(pool="zeta") for _ in range(2)]
    other = pool_token_create(pool="eta")
    out = io.StringIO()
    call_command("revokepooltokens", "zeta", "--key", keys[0], stdout=out)
    assert out.getvalue().strip() == "revoked 1 token(s) of the pool zeta"
    assert pool_for_key(keys[0]) is None and pool_for_key(keys[1]) is not None
    call_command("revokepooltokens", "zeta", stdout=out)
    assert pool_for_key(keys[1]) is None
    assert pool_for_key(other) == WorkerPool.objects.get(name="eta")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Worker {keys[1]}")
    beat = {"pool": "zeta", "worker": "z1"}
    assert client.post("/workers/pools/heartbeat", beat, format="json").status_code == 401
    with pytest.raises(CommandError, match="not a live token"):
        call_command("revokepooltokens", "zeta", "--key", keys[0])
    with pytest.raises(CommandError, match="no worker pool"):
        call_command("revokepooltokens", "theta")


@pytest.mark.django_db(transaction=True)
def test_two_pools_registering_one_type_at_once_one_gets_it():
    for name in ("a", "b"):
        pool_token_create(pool=name)
    pools = list(WorkerPool.objects.filter(name__in=["a", "b"]))
    barrier = threading.Barrier(2)

    def take(pool: WorkerPool) -> str:
        barrier.wait()
        try:
            pool_register(pool=pool, worker="w", concurrency=1, types=[RESIZE])
            return "registered"
        except JobConflict:
            return "refused"
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as threads:
        outcomes = sorted(threads.map(take, pools))
    assert outcomes == ["refused", "registered"]
    owners = [p.name for p in WorkerPool.objects.all() if "acme.resize" in p.type_names()]
    assert len(owners) == 1
