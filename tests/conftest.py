"""Shared fixtures. Tests use the real PostgreSQL (pytest-django's test database) and the
real Redis (database 15 by default, see tests/settings.py); end-to-end tests start real Celery
worker and scheduler processes against both."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from jobs.redis_client import get_redis

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["tests.factories"]


@pytest.fixture(autouse=True)
def _clean_redis() -> Iterator[None]:
    """Every test starts with an empty Redis database (ledger, broker queues, wake-ups)."""
    get_redis().flushdb()
    yield


@pytest.fixture(autouse=True)
def _fresh_channel_layer() -> Iterator[None]:
    """Every test gets its own channel layer. Each WebsocketCommunicator test runs in a new
    event loop, and a consumer abandoned when a test's loop closed can leave the shared
    layer's receive lock held, bound to a dead loop (a server process has one loop)."""
    from channels.layers import channel_layers

    channel_layers.backends = {}
    yield
    channel_layers.backends = {}


def _client_for(user: Any) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    client.user = user  # type: ignore[attr-defined]
    return client


@pytest.fixture
def user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("alice", password="alice-password")


@pytest.fixture
def other_user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("bob", password="bob-password")


@pytest.fixture
def staff_user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("operator", password="op-password", is_staff=True)


@pytest.fixture
def api(user: Any) -> APIClient:
    """An API client authenticated by token as ``user``."""
    return _client_for(user)


@pytest.fixture
def other_api(other_user: Any) -> APIClient:
    return _client_for(other_user)


@pytest.fixture
def staff_api(staff_user: Any) -> APIClient:
    return _client_for(staff_user)


@pytest.fixture
def anon_api() -> APIClient:
    return APIClient()


def process_env(**extra: str) -> dict[str, str]:
    """The environment of a platform process pointed at this test run's database and Redis."""
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        MAX_CPU_UNITS=str(settings.MAX_CPU_UNITS),
        MAX_MEMORY_MB=str(settings.MAX_MEMORY_MB),
        DRACONIC_LEASE_SECONDS=str(settings.DRACONIC_LEASE_SECONDS),
        DRACONIC_RETRY_BASE_SECONDS=str(settings.DRACONIC_RETRY_BASE_SECONDS),
        DRACONIC_RETRY_MAX_SECONDS=str(settings.DRACONIC_RETRY_MAX_SECONDS),
        DRACONIC_STARVATION_SECONDS=str(settings.DRACONIC_STARVATION_SECONDS),
        DRACONIC_SCHEDULER_TICK_SECONDS="0.2",
        DRACONIC_EXPORT_DIR=str(settings.DRACONIC_EXPORT_DIR),
        EMAIL_FILE_PATH=str(settings.EMAIL_FILE_PATH),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Platform:
    """Real worker and scheduler processes for one test; ``stop()`` ends them all."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start_worker(
        self,
        name: str = "worker",
        *,
        concurrency: int = 2,
        queues: str = "critical,high,normal,low",
        **env: str,
    ) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "draconic",
                "worker",
                "-Q",
                queues,
                "-c",
                str(concurrency),
                "-n",
                f"{name}@%h",
                "-l",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=process_env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def start_scheduler(self, name: str = "scheduler", **env: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "scheduler"],
            cwd=ROOT,
            env=process_env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def start_web(self, name: str = "web", **env: str) -> str:
        """daphne serving ``draconic.asgi`` (REST, WebSocket) on a free port, the way
        ``make run`` serves it; returns its base URL once ``/healthz`` answers."""
        with socket.socket() as probe:  # the kernel's choice, so parallel runs never collide
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115
        argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
        self.procs[name] = subprocess.Popen(
            [*argv, "draconic.asgi:application"],
            cwd=ROOT,
            env=process_env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: _answers(base + "/healthz") or self.procs[name].poll() is not None,
            timeout=120,
            interval=0.2,
            message=f"{name} to serve {base}",
        )
        if self.procs[name].poll() is not None:
            raise AssertionError(f"{name} exited at start-up:\n{self.logs()}")
        return base

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def stop(self) -> None:
        for name in list(self.procs):
            proc = self.procs[name]
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
            del self.procs[name]

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name} ---\n{p.read_text(errors='replace')[-4000:]}"
            for p in self.tmp.glob("*.log")
        )


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310  (local server)
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture
def platform(transactional_db: None, tmp_path: Path) -> Iterator[Platform]:
    """Start real processes with ``platform.start_worker()`` / ``start_scheduler()``."""
    p = Platform(tmp_path)
    yield p
    p.stop()


def wait_until(
    predicate: Callable[[], Any],
    *,
    timeout: float = 60.0,
    interval: float = 0.05,
    message: str = "",
) -> Any:
    """Poll ``predicate`` until it returns something truthy. The timeout is a hang guard for a
    broken platform, not a performance assertion: it is generous on purpose."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting: {message or predicate}")
        time.sleep(interval)
