"""A live platform whose workers serve the bridged types of ``tests.e2e.djt_tasks``, and the
test process configured as a team's project that sends to it: ``TASKS`` on the
``DraconicBackend`` and the Celery app's ``draconic_url``/``draconic_token``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.authtoken.models import Token

from draconic import celery_app
from tests.e2e.sdk_live import Live
from tests.harness import ROOT, Supervisor, _answers, free_port, wait_until, worker_argv

#: Where the platform's processes find the bridged types and this branch's SDK.
BRIDGE_ENV = {
    "DRACONIC_HANDLER_MODULES": "tests.e2e.djt_handlers",
    "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT / "sdk" / "src"), os.environ.get("PYTHONPATH", "")) if p
    ),
}
BACKEND = "draconic_sdk.django_tasks.DraconicBackend"
#: This branch's own port range: the harness's default range is shared with the other
#: branches' test runs on this machine, and a server of theirs answering on a port this run
#: just found free would take this run's requests.
PORT_RANGE_START = int(os.environ.get("DRACONIC_TEST_PORT_BASE", "8800"))


def start_web(platform: Supervisor, **env: str) -> str:
    """daphne on ``draconic.asgi``, as ``Supervisor.start_web``, on a port of this range."""
    port = free_port(PORT_RANGE_START)
    argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    proc = platform.start("web", [*argv, "draconic.asgi:application"], platform.environment(**env))
    base = f"http://127.0.0.1:{port}"
    wait_until(
        lambda: _answers(base + "/healthz") or proc.poll() is not None,
        timeout=120,
        interval=0.2,
        message=f"web to serve {base}",
    )
    if proc.poll() is not None:
        raise AssertionError(f"web exited at start-up:\n{platform.logs()}")
    return base


def start_bridged(platform: Supervisor, user: Any, staff_user: Any) -> Live:
    url = start_web(platform, **BRIDGE_ENV)
    platform.start("worker", worker_argv("worker"), platform.environment(**BRIDGE_ENV))
    platform.start_scheduler(**BRIDGE_ENV)
    token, _ = Token.objects.get_or_create(user=user)
    staff, _ = Token.objects.get_or_create(user=staff_user)
    return Live(platform=platform, url=url, token=token.key, staff_token=staff.key)


@pytest.fixture
def bridged(platform: Supervisor, user: Any, staff_user: Any) -> Iterator[Live]:
    """The platform, with this process's django.tasks and Celery tasks sent to it."""
    live = start_bridged(platform, user, staff_user)
    tasks = {"default": {"BACKEND": BACKEND, "OPTIONS": {"url": live.url, "token": live.token}}}
    saved = {k: celery_app.conf.get(k) for k in ("draconic_url", "draconic_token")}
    celery_app.conf.update(draconic_url=live.url, draconic_token=live.token)
    try:
        with override_settings(TASKS=tasks):
            yield live
    finally:
        celery_app.conf.update(saved)
