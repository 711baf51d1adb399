"""``draconic_sdk.worker``: finding a pool's job types (``discover``, ``register_source``),
the Django settings of a pool's worker (``WorkerConfig.from_mapping``), and a worker that
refuses to start on a type it cannot run."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

from draconic_sdk import job_type
from draconic_sdk.jobtypes import JobType
from draconic_sdk.worker import _sources, discover, register_source
from draconic_sdk.worker.app import WorkerConfig
from tests.harness import SDK_SRC


def _module(name: str, **members: object) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(members)
    sys.modules[name] = module
    return module


@pytest.fixture
def clean_sources():
    saved = list(_sources)
    yield
    _sources[:] = saved


def test_discover_finds_the_decorated_functions_and_what_each_source_finds(clean_sources):
    @job_type("t.one")
    def one(n: int) -> int:
        return n

    def two_fn(n: int) -> int:
        return n

    _module("pool_mod_a", one=one, other=object())
    register_source(
        lambda module: [JobType(name="t.two", fn=two_fn)] if module.__name__ == "pool_mod_a" else []
    )
    assert [t.name for t in discover(["pool_mod_a"])] == ["t.one", "t.two"]


def test_a_source_is_registered_once(clean_sources):
    def source(module: types.ModuleType) -> list[JobType]:
        return []

    register_source(source)
    register_source(source)
    assert _sources.count(source) == 1


def test_two_different_types_under_one_name_are_refused(clean_sources):
    first = job_type("t.same")(lambda: 1)
    second = job_type("t.same")(lambda: 2)
    _module("pool_mod_b", first=first)
    _module("pool_mod_c", second=second)
    with pytest.raises(ValueError, match=r"t\.same"):
        discover(["pool_mod_b", "pool_mod_c"])


def test_the_django_settings_name_what_they_lack():
    with pytest.raises(ValueError, match="WORKER_TOKEN, BROKER_URL"):
        WorkerConfig.from_mapping({"URL": "http://x", "POOL": "p", "APPS": ["m"]})
    config = WorkerConfig.from_mapping(
        {
            "URL": "u",
            "WORKER_TOKEN": "t",
            "BROKER_URL": "b",
            "POOL": "p",
            "APPS": ["m"],
            "CONCURRENCY": 3,
        }
    )
    assert (config.pool, config.modules, config.concurrency) == ("p", ["m"], 3)
    assert config.shutdown_grace == 30.0  # a SIGTERM's grace when the settings say none
    required = {"URL": "u", "WORKER_TOKEN": "t", "BROKER_URL": "b", "POOL": "p", "APPS": ["m"]}
    for grace in (0, 5):  # 0 is a grace too: hand back at once
        config = WorkerConfig.from_mapping({**required, "SHUTDOWN_GRACE_SECONDS": grace})
        assert config.shutdown_grace == grace


PICKLED = """
from celery import Celery, shared_task

app = Celery("team", task_cls="draconic_sdk.celery_bridge:DraconicTask")


@shared_task(serializer="pickle")
def ship(order_id: int) -> None: ...
"""


def test_the_worker_refuses_to_start_on_a_celery_task_it_cannot_bridge(tmp_path: Path) -> None:
    """At start-up, before it calls the server or the broker (both unreachable here): exit 1
    with what to do, not a traceback."""
    (tmp_path / "team_tasks.py").write_text(PICKLED)
    argv = [sys.executable, "-m", "draconic_sdk.cli", "worker", "--app", "team_tasks"]
    done = subprocess.run(
        [*argv, "--pool", "team"],
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(SDK_SRC),
            "DRACONIC_URL": "http://127.0.0.1:1",
            "DRACONIC_WORKER_TOKEN": "dwk_unused",
            "DRACONIC_BROKER_URL": "redis://127.0.0.1:1/0",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == (
        "the worker cannot start: team_tasks.ship: serializer='pickle'; a Draconic payload is "
        "JSON: use serializer='json' and pass JSON values (ids rather than objects)"
    )
