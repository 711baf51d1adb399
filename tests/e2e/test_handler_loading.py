"""A job type that cannot be loaded stops start-up.

The story: ``DRACONIC_HANDLER_MODULES=acme_handlers`` with no importable ``acme_handlers``
used to start every process normally and ``/admin/health`` said ok; the registry imported the
module on first use, so every submit, built-in types included, then answered 500. Now every
process imports the configured modules when Django starts and refuses to start, naming the
module, the import error and ``sys.path``; a module made importable through ``PYTHONPATH``
loads and its type runs; and health is not ok while a configured module is missing in the API
or on a live worker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from jobs.engine import ledger
from jobs.models import Job, JobStatus
from jobs.types import registry
from tests.harness import ROOT, process_env, wait_until
from workers import liveness

MISSING = "acme_handlers_missing"
CELERY_WORKER = [
    *("-m", "celery", "-A", "draconic", "worker", "-Q", "normal", "-c", "1"),
    *("--without-mingle", "--without-gossip"),
]

#: A deployment's own job-type module, as a team would write it.
ACME_MODULE = """
from __future__ import annotations

from jobs.types import Handler, JobContext, register


@register("acme_greet")
class Greet(Handler):
    def validate_payload(self, payload):
        return {} if isinstance(payload.get("name"), str) else {"payload.name": "is required"}

    def run(self, ctx: JobContext):
        return {"greeting": f"hello {ctx.payload['name']}"}
"""


def start_up(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """Run one platform process until it exits. The timeout only guards against a process
    that starts when it should not: it is killed and reported as having started."""
    proc = subprocess.Popen(
        [sys.executable, *argv],
        cwd=ROOT,
        env=process_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"{argv} started and kept running:\n{err[-3000:]}") from None
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


@pytest.mark.e2e
@pytest.mark.parametrize(
    "argv",
    [["manage.py", "check"], ["manage.py", "scheduler"], CELERY_WORKER],
    ids=["check", "scheduler", "celery-worker"],
)
def test_a_process_refuses_to_start_when_a_configured_module_cannot_be_imported(argv):
    done = start_up(argv, DRACONIC_HANDLER_MODULES=f"workers.handlers.send_email,{MISSING}")

    assert done.returncode != 0, done.stderr[-3000:]
    err = done.stderr
    assert f"DRACONIC_HANDLER_MODULES lists {MISSING!r}, which cannot be loaded" in err, err
    assert f"ModuleNotFoundError: No module named {MISSING!r}" in err
    assert "Python looked for it in sys.path:" in err
    assert f"    {ROOT}\n" in err  # the entries themselves, one a line
    assert "PYTHONPATH" in err  # and how to fix it


@pytest.mark.e2e
def test_an_error_inside_a_module_is_named_with_the_module(tmp_path):
    (tmp_path / "acme_broken.py").write_text("import acme_dependency_not_installed\n")

    done = start_up(
        ["manage.py", "check"], PYTHONPATH=str(tmp_path), DRACONIC_HANDLER_MODULES="acme_broken"
    )

    assert done.returncode != 0
    assert "DRACONIC_HANDLER_MODULES lists 'acme_broken', which cannot be loaded" in done.stderr
    assert "No module named 'acme_dependency_not_installed'" in done.stderr
    assert f"    {tmp_path}\n" in done.stderr  # PYTHONPATH is part of what was searched


def _request(method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310  (local server)
    req.add_header("Authorization", f"Token {token}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.e2e
def test_a_module_on_pythonpath_loads_everywhere_and_its_type_runs(platform, tmp_path):
    modules = tmp_path / "acme"
    modules.mkdir()
    (modules / "acme_handlers.py").write_text(ACME_MODULE)
    env = {"PYTHONPATH": str(modules), "DRACONIC_HANDLER_MODULES": "acme_handlers"}
    assert start_up(["manage.py", "check"], **env).returncode == 0
    user = get_user_model().objects.create_user("acme", is_staff=True)
    token = Token.objects.create(user=user).key
    platform.start_worker(**env)
    platform.start_scheduler(**env)
    base = platform.start_web(**env)

    status, job = _request("POST", f"{base}/jobs/", token, {"type": "acme_greet", "payload": {}})
    assert (status, job["payload"]) == (400, ["payload.name: is required"]), job
    status, job = _request(
        "POST", f"{base}/jobs/", token, {"type": "acme_greet", "payload": {"name": "ann"}}
    )
    assert status == 201, job

    def completed() -> Job | None:
        return Job.objects.filter(id=job["id"], status=JobStatus.COMPLETED).first()

    done = wait_until(completed, timeout=120, message=f"acme_greet\n{platform.logs()}")
    assert done.result == {"greeting": "hello ann"}
    # Health agrees: the module is loaded in the API and on the worker.
    status, body = _request("GET", f"{base}/admin/health", token)
    checks = body["checks"]["job_types"]
    assert checks["ok"] is True, body
    assert "acme_greet" in checks["types"]
    assert checks["modules"] == ["acme_handlers"]


# --- health ------------------------------------------------------------------------------


@pytest.fixture
def empty_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A deployment module that loads (it registers no type, so no other test sees one)."""
    (tmp_path / "acme_health_probe.py").write_text('"""Registers nothing."""\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.load_modules(["acme_health_probe"])
    return "acme_health_probe"


@pytest.mark.django_db
def test_health_is_not_ok_while_a_configured_module_is_not_loaded(staff_api, settings):
    ledger.ledger_rebuild([])
    liveness.beat_once("w1@test", {"handler_modules": [MISSING]})
    settings.DRACONIC_HANDLER_MODULES = [MISSING]

    response = staff_api.get("/admin/health")

    body = response.json()
    assert (response.status_code, body["failing"]) == (503, ["job_types"]), body
    check = body["checks"]["job_types"]
    assert check["missing"] == [MISSING]
    assert check["error"] == f"configured job-type modules not loaded: {MISSING}"
    assert "send_email" in check["types"]


@pytest.mark.django_db
def test_health_names_a_worker_that_runs_without_a_configured_module(
    staff_api, settings, empty_module
):
    ledger.ledger_rebuild([])
    settings.DRACONIC_HANDLER_MODULES = [empty_module]
    liveness.beat_once("new@test", {"handler_modules": [empty_module]})
    assert staff_api.get("/admin/health").status_code == 200

    liveness.beat_once("old@test", {"handler_modules": []})  # started on an older setting
    response = staff_api.get("/admin/health")

    assert response.status_code == 503
    check = response.json()["checks"]["job_types"]
    assert check["workers_missing"] == {"old@test": [empty_module]}
    assert "missing" not in check
