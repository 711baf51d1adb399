"""What a run measures (counts for the full run and for ``--quick``) and the environment of
every process it starts: production settings on a dedicated database and Redis database."""

from __future__ import annotations

import argparse
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/draconic_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/6"  # `make run` uses 0, the tests 15
#: The environment the bench was started with, before it configures its own process.
BASE_ENV = dict(os.environ)


@dataclass(frozen=True)
class Counts:
    """Sizes of each benchmark."""

    single: int = 5_000  # single-job submissions timed at 20 clients
    memory: int = 10_000  # submissions over which API RSS growth is measured (includes single)
    warmup: int = 200
    rounds: int = 2  # alternating rounds of the throughput figures; the best one counts
    clients: int = 20
    batches: int = 20  # POST /jobs/batch/ requests of batch_size jobs
    batch_size: int = 1_000
    batch_clients: int = 2
    e2e: int = 10_000
    chain: int = 200
    scale_small: int = 10_000
    scale_large: int = 1_000_000
    scale_requests: int = 2_000
    scale_dispatch: int = 2_000
    slow: int = 32  # 2-second jobs of the make run end-to-end figure


QUICK = Counts(
    rounds=1,
    single=1_000,
    memory=2_000,
    warmup=100,
    batches=4,
    e2e=2_000,
    chain=50,
    scale_large=100_000,
    scale_requests=500,
    scale_dispatch=1_000,
    slow=16,
)


@dataclass(frozen=True)
class Options:
    quick: bool
    database_url: str
    redis_url: str
    port: int
    keep_db: bool
    profile: bool
    settings: tuple[tuple[str, str], ...]
    only: tuple[str, ...]

    @property
    def counts(self) -> Counts:
        return QUICK if self.quick else Counts()

    @property
    def database_name(self) -> str:
        return urlparse(self.database_url).path.lstrip("/")


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Draconic's benchmarks beside their baselines (a bare DRF insert view, raw "
        "Celery), on production settings; prints one table and writes bench/results/latest.md. "
        "See docs/performance.md.",
    )
    parser.add_argument("--quick", action="store_true", help="smaller counts: under 2 minutes")
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="a database the bench owns: dropped and re-created (its name must contain 'bench')",
    )
    parser.add_argument(
        "--redis-url",
        default=DEFAULT_REDIS_URL,
        help="a Redis database the bench owns: emptied between benchmarks",
    )
    parser.add_argument("--port", type=int, default=18400, help="first of the two HTTP ports used")
    parser.add_argument(
        "--keep-db", action="store_true", help="do not drop the database at the end"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the API and the worker with py-spy; summaries go into the report",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment setting for the processes the bench starts (repeatable), "
        "e.g. --set MAX_CPU_UNITS=64 to try a deployment setting",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated subset of: submit, batch, e2e (with raw Celery), scale, delayed, "
        "slow (2-second jobs under make run's defaults), limits",
    )
    ns = parser.parse_args(argv)
    opts = Options(
        quick=ns.quick,
        database_url=ns.database_url,
        redis_url=ns.redis_url,
        port=ns.port,
        keep_db=ns.keep_db,
        profile=ns.profile,
        settings=tuple(_setting(parser, s) for s in ns.set),
        only=tuple(p for p in ns.only.split(",") if p),
    )
    unknown = set(opts.only) - {"submit", "batch", "e2e", "scale", "delayed", "slow", "limits"}
    if unknown:
        parser.error(f"--only: unknown benchmark(s) {', '.join(sorted(unknown))}")
    if "bench" not in opts.database_name:
        parser.error(
            f"refusing to use database {opts.database_name!r}: its name must contain 'bench'"
        )
    return opts


def _setting(parser: argparse.ArgumentParser, text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        parser.error(f"--set wants NAME=VALUE, not {text!r}")
    return name, value


def random_secret(length: int = 50) -> str:
    alphabet = string.ascii_letters + string.digits + "-_"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def process_env(opts: Options, *, settings_module: str = "draconic.settings") -> dict[str, str]:
    """The environment of a platform or baseline process: production settings."""
    env = {k: v for k, v in BASE_ENV.items() if not k.startswith(("DJANGO_", "CELERY_"))}
    env.update(
        DJANGO_SETTINGS_MODULE=settings_module,
        DEBUG="false",
        SECRET_KEY=random_secret(),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DB_CONN_MAX_AGE="60",
        DRACONIC_THROTTLE_USER="1000000/min",
        LOG_LEVEL="WARNING",
        DATABASE_URL=opts.database_url,
        REDIS_URL=opts.redis_url,
        # The noop type is diagnostic: off by default when DEBUG is off.
        DRACONIC_DIAGNOSTIC_TYPES="true",
        # The ledger caps the jobs in flight at the cluster's capacity. The default (8 CPU
        # units, a laptop) would measure that cap, not the platform; a cluster of this size
        # keeps the workers fed. `--set MAX_CPU_UNITS=8` measures the capped case.
        MAX_CPU_UNITS="256",
        MAX_MEMORY_MB="262144",
        PYTHONUNBUFFERED="1",
    )
    env.update(opts.settings)
    return env
