"""``make chaos``: a fault-injection run of the real platform on this machine.

It starts a PostgreSQL cluster and a Redis server of its own (on free ports, in a temporary
directory: the machine's shared servers are never touched), two Celery workers and two
schedulers, and submits a load of dependent jobs (chains, diamonds, fan-ins; mixed priorities;
~10% fail their first attempt; a few fail for good). While the load runs it SIGKILLs workers
(and once a scheduler), kills and restarts Redis, flushes it, and restarts PostgreSQL. When every
job has ended it checks:

- every job is in exactly one terminal state, and only the expected ones failed or were
  cancelled (the doomed jobs, and their descendants);
- no handler ran twice for the same attempt (the handlers' run log, ``tests.chaos.handlers``);
- no completed child started before all its parents completed;
- the resource ledger holds nothing;
- the counts it prints are the database's.

A platform process that exits by itself is restarted, as a supervisor would, and reported as a
crash (with its log's tail) without failing the run. It prints one summary line and exits 1 if
anything is wrong (with the details and the processes' logs kept under ``var/``), 0 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from tests.chaos.experiment import Chaos, drive, revive, say
from tests.chaos.plan import FULL_FAULTS, QUICK_FAULTS, make_plan
from tests.chaos.services import Postgres, RedisServer
from tests.chaos.verify import evidence, explain, summary, verify
from tests.harness import PORT_BASE, ROOT, Supervisor, free_port

RUN_LOG_ENV = "DRACONIC_CHAOS_RUN_LOG"  # the same name as in tests.chaos.handlers


def platform_env(
    pg: Postgres, redis_server: RedisServer, root: Path, run_log: Path
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="draconic.settings",
        DATABASE_URL=pg.url("chaos"),
        REDIS_URL=redis_server.url(),
        CELERY_BROKER_URL=redis_server.url(),
        DRACONIC_LEASE_SECONDS="3",
        DRACONIC_REQUEUE_AFTER_SECONDS="5",
        DRACONIC_RETRY_BASE_SECONDS="0.2",
        DRACONIC_RETRY_MAX_SECONDS="2",
        DRACONIC_HANDLER_MODULES="tests.chaos.handlers",
        DRACONIC_SCHEDULER_TICK_SECONDS="0.3",
        DB_CONNECT_TIMEOUT="2",
        MAX_CPU_UNITS="12",
        MAX_MEMORY_MB="4096",
        DRACONIC_EXPORT_DIR=str(root / "exports"),
        EMAIL_FILE_PATH=str(root / "mail"),
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="INFO",
    )
    env[RUN_LOG_ENV] = str(run_log)
    return env


def setup_django(env: dict[str, str], pg: Postgres) -> Any:
    """Point this process at our services, create the database and the owner of the jobs."""
    import psycopg2

    os.environ.update(env)
    os.environ["LOG_LEVEL"] = "WARNING"  # the load driver's own transitions are not news
    conn = psycopg2.connect(host="127.0.0.1", port=pg.port, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("CREATE DATABASE chaos")
    conn.close()
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return get_user_model().objects.create_user("chaos")


def keep_logs(root: Path) -> Path:
    target = ROOT / "var" / f"chaos-failed-{time.strftime('%Y%m%d-%H%M%S')}"
    target.mkdir(parents=True, exist_ok=True)
    for path in root.glob("*.log"):
        shutil.copy(path, target / path.name)
    return target


def run(args: argparse.Namespace, root: Path, cleanup: list[Any]) -> int:
    taken: set[int] = set()
    pg = Postgres(root, free_port(args.port_base, taken))
    redis_server = RedisServer(root, free_port(args.port_base, taken))
    run_log = root / "runs.log"
    pg.init()
    pg.start()
    cleanup.append(lambda: pg.stop("immediate"))
    redis_server.start()
    cleanup.append(redis_server.kill)
    env = platform_env(pg, redis_server, root, run_log)
    owner = setup_django(env, pg)
    plan = make_plan(args.jobs, 50, random.Random(args.seed))
    fleet = Supervisor(root, env)
    cleanup.append(fleet.stop_all)
    for name in ("w1", "w2"):
        fleet.start_worker(name, heartbeat=True)
    for name in ("s1", "s2"):
        fleet.start_scheduler(name)
    chaos = Chaos(root=root, pg=pg, redis=redis_server, fleet=fleet, plan=plan)
    say(
        f"{plan.total} jobs in {len(plan.batches)} batches; postgres :{pg.port}, redis :{redis_server.port}, "
        f"2 workers, 2 schedulers, seed {args.seed}"
    )
    finished = drive(chaos, owner, QUICK_FAULTS if args.quick else FULL_FAULTS, args.timeout)
    if not finished:
        say(f"hang guard: not every job ended within {args.timeout:.0f}s")
    verdict = verify(chaos, run_log)
    revive(fleet)
    if not verdict.passed:
        explain(verdict)
    if not verdict.passed or fleet.crashes:
        say(f"process logs kept in {keep_logs(root)}")
    if fleet.crashes:
        say(f"processes that exited by themselves: {fleet.crashes}")
    say(f"evidence: {evidence(chaos, run_log)}")
    say(summary(chaos, verdict))
    return 0 if verdict.passed else 1


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--jobs", type=int, default=None, help="how many jobs (default 2000, --quick 500)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a shorter run for CI: 500 jobs, 7 faults"
    )
    parser.add_argument(
        "--timeout", type=float, default=600, help="hang guard in seconds (default 600)"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed of the load")
    # 18700 by default; it moves with DRACONIC_TEST_PORT_BASE, as every port of a test run does
    # (two runs' chaos tests start at about the same time: it is the suite's first test).
    parser.add_argument(
        "--port-base",
        type=int,
        default=int(os.environ.get("CHAOS_PORT_BASE", PORT_BASE + 550)),
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    args.jobs = args.jobs or (500 if args.quick else 2000)
    args.seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    root = Path(tempfile.mkdtemp(prefix="draconic-chaos-"))
    cleanup: list[Any] = []
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return run(args, root, cleanup)
    except KeyboardInterrupt:
        say("interrupted; cleaning up")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for step in reversed(cleanup):
            with contextlib.suppress(Exception):
                step()
        if args.keep:
            say(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
