"""Starting an external pool's worker for the end-to-end tests: ``draconic worker`` from the
SDK, in its own process, with the team's modules (``tests.e2e.external``), pointed at the
server's URL and the broker, and with a DATABASE_URL of a database that is not Draconic's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from typing import Any

from django.conf import settings

from jobs.pools.services import pool_token_create
from tests.harness import ROOT, Supervisor, free_port, send, wait_until

POOL = "ext"
APP = "tests.e2e.external.jobs"
#: The team's own database: not Draconic's (it need not even exist for these types).
OWN_DATABASE = "postgres://postgres@127.0.0.1:5432/ext_team_own_db"


def worker_env(base: str, token: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "REDIS_URL")
    }
    env.update(
        DRACONIC_URL=base,
        DRACONIC_WORKER_TOKEN=token,
        DRACONIC_BROKER_URL=settings.CELERY_BROKER_URL,
        DATABASE_URL=OWN_DATABASE,
        PYTHONPATH=f"{ROOT / 'sdk' / 'src'}{os.pathsep}{ROOT}",
        PYTHONUNBUFFERED="1",
    )
    return env


def start_pool_worker(
    platform: Supervisor,
    name: str,
    base: str,
    token: str,
    *,
    concurrency: int = 1,
    options: tuple[str, ...] = (),
) -> None:
    """``draconic worker`` of the pool ``ext`` named ``name``; ``options``: more of its own."""
    argv = [sys.executable, "-m", "draconic_sdk.cli", "worker", "--app", APP, "--pool", POOL]
    argv += ["-c", str(concurrency), "--name", name, *options]
    platform.start(name, argv, worker_env(base, token))


def start_django_pool_worker(
    platform: Supervisor, name: str, base: str, token: str, *, team_db: str
) -> None:
    """``manage.py draconic_worker`` of the team's Django project (``team_settings``), after
    ``migrate`` of its own database."""
    env = worker_env(base, token)
    env.update(DJANGO_SETTINGS_MODULE="tests.e2e.external.team_settings", TEAM_DB=team_db)
    env.pop("DATABASE_URL")
    manage = [sys.executable, "-m", "django"]
    subprocess.run([*manage, "migrate", "-v0"], env=env, cwd=ROOT, check=True)
    platform.start(name, [*manage, "draconic_worker", "--name", name], env)


#: This branch's port range on the shared test machine (other branches' servers use the
#: harness's default range at the same time).
PORT_RANGE_START = int(os.environ.get("DRACONIC_TEST_PORT_BASE", "8700"))


def start_web(platform: Supervisor, **env: str) -> str:
    """daphne on ``draconic.asgi`` on a free port of ``PORT_RANGE_START``'s range; its URL
    once it answers. Checks that the answer is ours: the worker API is mounted."""
    port = free_port(PORT_RANGE_START)
    argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    proc = platform.start("web", [*argv, "draconic.asgi:application"], platform.environment(**env))
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"web exited at start-up:\n{platform.logs()}")
        try:
            status, _ = call(base, "dwk_none", "POST", "/workers/pools/heartbeat", {})
        except OSError:
            return False
        return status == 401  # the worker API, refusing an unknown worker key

    wait_until(up, timeout=120, interval=0.2, message=f"web to serve {base}")
    return base


def new_token(pool: str = POOL) -> str:
    return pool_token_create(pool=pool)


def call(base: str, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """A request to the real server with a worker token."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)  # noqa: S310
    request.add_header("Authorization", f"Worker {token}")
    request.add_header("Content-Type", "application/json")
    return send(request)
