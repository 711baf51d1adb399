"""A live platform whose bridged types (``tests.e2e.djt_tasks``: ``@task`` functions and
Celery tasks on ``DraconicTask``) run in the team's own Draconic worker, and the test process
configured as that team's project, which sends to it: ``TASKS`` on the ``DraconicBackend``
and the Celery app's ``draconic_url``/``draconic_token``.

The worker is ``manage.py draconic_worker`` of the team's settings
(``tests.e2e.external.djt_settings``), a process of its own that sees neither Draconic's
database nor its settings: the pool ``djt``, serving the module's types as the runtime
discovers them (the backend's and the bridge's sources)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.authtoken.models import Token

from draconic import celery_app
from tests.e2e.external_pool import new_token, worker_env
from tests.e2e.sdk_live import Live
from tests.harness import Supervisor, _answers, free_port, wait_until

POOL = "djt"
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


def start_server(platform: Supervisor, user: Any, staff_user: Any) -> Live:
    """The server and the scheduler (no built-in worker), a user's and a staff token."""
    url = start_web(platform)
    platform.start_scheduler()
    token, _ = Token.objects.get_or_create(user=user)
    staff, _ = Token.objects.get_or_create(user=staff_user)
    return Live(platform=platform, url=url, token=token.key, staff_token=staff.key)


def start_team_worker(platform: Supervisor, live: Live, name: str = "djt-worker") -> None:
    """The team project's own Draconic worker, once it has registered the pool ``djt``."""
    env = worker_env(live.url, new_token(POOL))
    env.pop("DATABASE_URL")
    env.update(DJANGO_SETTINGS_MODULE="tests.e2e.external.djt_settings")
    platform.start(name, [sys.executable, "-m", "django", "draconic_worker", "--name", name], env)
    # The whole log: Celery's banner and warnings, printed just after the line, can push it
    # out of a tail before a poll of a loaded machine reads it.
    wait_until(
        lambda: "registered" in platform.log_tail(name, chars=10**7) or platform.check(name),
        timeout=120,
        message=f"{name} to register\n{platform.logs()}",
    )


def start_bridged(platform: Supervisor, user: Any, staff_user: Any) -> Live:
    live = start_server(platform, user, staff_user)
    start_team_worker(platform, live)
    return live


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
