"""Settings come from the environment; a value that cannot be used stops the process at
start-up (``django.setup()``) with an error naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework.throttling import SimpleRateThrottle

from draconic.env import env_bool, env_choice, env_float, env_int, env_list, env_rate, env_url
from tests.harness import ROOT


def start_django(**env: str) -> subprocess.CompletedProcess[str]:
    """``django.setup()`` in a fresh interpreter with ``env`` on top of the test environment."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    full.update(DJANGO_SETTINGS_MODULE="draconic.settings", **env)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('ready')"],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_default_environment_starts() -> None:
    result = start_django()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ready"


BAD_VALUES = [
    ("MAX_CPU_UNITS", "abc"),
    ("MAX_CPU_UNITS", "0"),
    ("MAX_CPU_UNITS", "2.5"),
    ("MAX_MEMORY_MB", "-1"),
    ("MAX_MEMORY_MB", "4GB"),
    ("DEBUG", "maybe"),
    ("DEBUG", "2"),
    ("DATABASE_URL", "nonsense"),
    ("DATABASE_URL", "mysql://root@localhost/draconic"),
    ("DATABASE_URL", "postgres://"),
    ("REDIS_URL", "http://127.0.0.1:6379/0"),
    ("LOG_LEVEL", "LOUD"),
    ("DB_CONN_MAX_AGE", "-5"),
    ("DRACONIC_MAX_PAYLOAD_BYTES", "64k"),
    ("DRACONIC_RETRY_BASE_SECONDS", "soon"),
    ("DRACONIC_RETRY_MAX_SECONDS", "nan"),
    ("DRACONIC_LEASE_SECONDS", "inf"),
    ("CELERY_WORKER_CONCURRENCY", "two"),
    ("EMAIL_USE_TLS", "sometimes"),
    # DRF reads a rate only at the first throttled request, and then a 500 would say why.
    ("DRACONIC_THROTTLE_USER", "6000"),
    ("DRACONIC_THROTTLE_USER", "0/min"),
    ("DRACONIC_THROTTLE_USER", "1.5/s"),
    ("DRACONIC_THROTTLE_USER", "60/fortnight"),
    ("DRACONIC_THROTTLE_ANON", "many/min"),
    ("DRACONIC_THROTTLE_ANON", "60/min/ip"),
    # Celery reads its broker URL only when it first connects.
    ("CELERY_BROKER_URL", "127.0.0.1:6379"),
    ("CELERY_BROKER_URL", "redis://"),
    ("CELERY_BROKER_URL", "amqp://guest@127.0.0.1:5672//"),
    # Django builds a storage at its first use: at start-up here (draconic.storage).
    ("DRACONIC_EXPORT_STORAGE", "no.such.Storage"),
    ("DRACONIC_EXPORT_STORAGE_OPTIONS", "{bad json"),
    ("DRACONIC_EXPORT_STORAGE_OPTIONS", "[1, 2]"),
    ("DRACONIC_EXPORT_STORAGE_OPTIONS", '{"no_such_option": 1}'),
]


@pytest.mark.parametrize(("name", "value"), BAD_VALUES, ids=[f"{n}={v}" for n, v in BAD_VALUES])
def test_a_bad_value_fails_at_start_up_naming_the_variable(name: str, value: str) -> None:
    result = start_django(**{name: value})
    assert result.returncode != 0, f"{name}={value!r} was accepted"
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr.strip().splitlines()[-1]
    assert "ready" not in result.stdout


def test_a_broker_apart_from_redis_url_starts() -> None:
    result = start_django(CELERY_BROKER_URL="rediss://:pw@broker.example.com:6380/1")
    assert result.returncode == 0, result.stderr


def test_production_without_a_secret_key_fails_at_start_up() -> None:
    result = start_django(DEBUG="false", SECRET_KEY="")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr.strip().splitlines()[-1]


def test_production_with_a_secret_key_starts() -> None:
    result = start_django(DEBUG="false", SECRET_KEY="s3cret-" * 8)
    assert result.returncode == 0, result.stderr


# --- the readers themselves (in process) ------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, 7), ("", 7), ("12", 12), (" 3 ", 3), ("0", 0)]
)
def test_env_int_reads_integers_and_defaults(
    monkeypatch: pytest.MonkeyPatch, raw: str | None, expected: int
) -> None:
    if raw is None:
        monkeypatch.delenv("X_INT", raising=False)
    else:
        monkeypatch.setenv("X_INT", raw)
    assert env_int("X_INT", 7, minimum=0) == expected


@pytest.mark.parametrize(
    ("reader", "raw"),
    [
        (lambda: env_int("X_VAR", 1), "one"),
        (lambda: env_int("X_VAR", 1, minimum=1), "0"),
        (lambda: env_float("X_VAR", 1.0), "fast"),
        (lambda: env_float("X_VAR", 1.0), "NaN"),
        (lambda: env_float("X_VAR", 1.0), "-inf"),
        (lambda: env_float("X_VAR", 1.0, minimum=0), "-0.5"),
        (lambda: env_bool("X_VAR", True), "yep"),
        (lambda: env_choice("X_VAR", "A", ("A", "B")), "c"),
        (lambda: env_url("X_VAR", "redis://h/0", schemes=("redis",)), "h:6379"),
        (lambda: env_rate("X_VAR", "1/s"), "10/sausage"),  # DRF: ten a second
        (lambda: env_rate("X_VAR", "1/s"), "-5/min"),
        (lambda: env_rate("X_VAR", "1/s"), ""),
    ],
)
def test_each_reader_names_the_variable_it_refuses(
    monkeypatch: pytest.MonkeyPatch, reader: object, raw: str
) -> None:
    monkeypatch.setenv("X_VAR", raw)
    with pytest.raises(ImproperlyConfigured, match="X_VAR"):
        reader()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("TRUE", True), ("on", True), ("no", False), ("0", False)]
)
def test_env_bool_reads_the_usual_spellings(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool
) -> None:
    monkeypatch.setenv("X_BOOL", raw)
    assert env_bool("X_BOOL", not expected) is expected


def test_env_list_splits_on_commas_and_drops_blanks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_LIST", " a, b ,,c ")
    assert env_list("X_LIST", []) == ["a", "b", "c"]


def _drf_reads(rate: str) -> tuple[int | None, int | None]:
    """(requests, seconds) of ``rate`` as DRF's own throttle parses it."""
    throttle = type("Fixed", (SimpleRateThrottle,), {"rate": rate})()
    return throttle.num_requests, throttle.duration


RATES = [
    *((f"7/{p}", 1) for p in ("s", "sec", "second")),
    *((f"7/{p}", 60) for p in ("m", "min", "minute")),
    *((f"7/{p}", 3600) for p in ("h", "hour")),
    *((f"7/{p}", 86400) for p in ("d", "day")),
]


@pytest.mark.parametrize(("raw", "seconds"), RATES)
def test_env_rate_takes_each_period_drf_reads(
    monkeypatch: pytest.MonkeyPatch, raw: str, seconds: int
) -> None:
    monkeypatch.setenv("X_RATE", f" {raw} ")
    assert _drf_reads(env_rate("X_RATE", "1/s")) == (7, seconds)


def _settings_error(**env: str) -> str:
    """Import the settings in a fresh process with ``env``; the error it prints, or ''."""
    code = "import sys; sys.argv = ['celery', 'flower']; import draconic.settings"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stderr


def test_settings_refuse_a_malformed_flower_basic_auth():
    assert "FLOWER_BASIC_AUTH must be user:password" in _settings_error(FLOWER_BASIC_AUTH="admin")


def test_settings_refuse_an_unauthenticated_flower_in_production():
    error = _settings_error(DEBUG="false", SECRET_KEY="x" * 50, FLOWER_BASIC_AUTH="")
    assert "FLOWER_BASIC_AUTH must be set to run Flower" in error
    assert _settings_error(DEBUG="false", SECRET_KEY="x" * 50, FLOWER_BASIC_AUTH="ops:pw") == ""
