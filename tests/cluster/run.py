"""``make cluster``: the platform on nine test hosts made of network namespaces on one bridge
(``tests.cluster.topology``), under a load submitted through the balancer and the faults of
``tests.cluster.faults``, ending with the invariants of ``make chaos`` (``tests.chaos.verify``)
plus the cluster's own: every job's terminal event reached the WebSocket client through the
balancer, every ``fail`` job was retried, every job of a cut-off worker ran again.

It prints one line ``cluster: hosts=N jobs=N faults=N lost=0 duplicates=0 ...`` and exits 1 if
any invariant fails. Every namespace, link and process it made is removed at the end, also on
Ctrl-C or SIGTERM; leftovers of an interrupted run (anything named ``drc-``) at the start.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
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

from tests.chaos.experiment import Chaos
from tests.chaos.plan import make_plan
from tests.chaos.run import RUN_LOG_ENV, platform_env
from tests.cluster import drive, driver, netns, topology
from tests.cluster.faults import say
from tests.harness import ROOT, Supervisor

#: (fraction of the submissions' duration, fault): each waits for the one before to end.
FULL_FAULTS = [
    (0.04, "api_kill"),
    (0.10, "worker_cut"),
    (0.20, "pgbouncer_restart"),
    (0.26, "scheduler_cut"),
    (0.34, "worker_netem"),
    (0.50, "scheduler_freeze"),
    (0.62, "api_kill"),
    (0.70, "worker_cut"),
    (0.80, "pgbouncer_restart"),
]
QUICK_FAULTS = [
    (0.05, "api_kill"),
    (0.15, "worker_cut"),
    (0.45, "pgbouncer_restart"),
    (0.55, "worker_netem"),
]


class _Endpoint:
    """What ``tests.chaos.run.platform_env`` asks of a service: its URL."""

    def __init__(self, url: str) -> None:
        self._url = url

    def url(self, *args: str) -> str:
        return self._url


def keep_logs(root: Path) -> Path:
    """Copy every process's log (and PostgreSQL's) to ``var/cluster-failed-<time>``."""
    target = ROOT / "var" / f"cluster-failed-{time.strftime('%Y%m%d-%H%M%S')}"
    target.mkdir(parents=True, exist_ok=True)
    for path in root.glob("*.log"):
        shutil.copy(path, target / path.name)
    return target


def kill_all(fleet: Supervisor) -> None:
    """SIGKILL every process group at once: the hosts are torn down, nothing needs a warm
    shutdown (``stop_all``'s SIGTERM and wait, one process after the other, took minutes)."""
    for name in list(fleet.procs):
        with contextlib.suppress(Exception):
            fleet.kill(name, signal.SIGKILL, timeout=5)


def setup_django(pg: Any) -> tuple[Any, str]:
    """This process on the database directly (not through PgBouncer, which the faults restart):
    create it, migrate, make the staff owner of the jobs and its token."""
    import psycopg2

    conn = psycopg2.connect(
        host=topology.DB.address, port=pg.port, user="postgres", dbname="postgres"
    )
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {topology.DATABASE}")
    conn.close()
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    call_command("migrate", verbosity=0)
    owner = get_user_model().objects.create_user("cluster", is_staff=True)
    return owner, Token.objects.create(user=owner).key


def run(args: argparse.Namespace, root: Path, cleanup: list[Any]) -> int:
    run_log = root / "runs.log"
    topology.build_network()
    fleet = Supervisor(root, dict(os.environ))
    cleanup.append(lambda: kill_all(fleet))
    pg = topology.start_db(root, fleet, args.pool_mode)
    cleanup.append(lambda: pg.stop("immediate"))
    base = platform_env(_Endpoint(""), _Endpoint(""), root, run_log)  # type: ignore[arg-type]
    env = topology.host_env(base, args.lease)
    shim = driver.shim_path()
    if shim:
        say("psycopg 3 is installed but requirements.txt pins psycopg2: the hosts use psycopg2")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (shim, env.get("PYTHONPATH")) if p)
        sys.path.insert(0, shim)
    fleet.env = env
    os.environ.update({**env, "DATABASE_URL": pg.url(topology.DATABASE), "LOG_LEVEL": "WARNING"})
    _owner, token = setup_django(pg)
    topology.start_platform(fleet, env)
    topology.wait_for_balancer(fleet)
    plan = make_plan(args.jobs, 8, random.Random(args.seed))
    chaos = Chaos(root=root, pg=pg, redis=None, fleet=fleet, plan=plan)  # type: ignore[arg-type]
    say(
        f"{plan.total} jobs in {len(plan.batches)} batches through {topology.lb_url()}; "
        f"{len(topology.HOSTS)} hosts; pgbouncer pool_mode={args.pool_mode}; seed {args.seed}"
    )
    outcome = drive.drive(
        chaos,
        token=token,
        faults=QUICK_FAULTS if args.quick else FULL_FAULTS,
        lease=args.lease,
        netem_seconds=15 if args.quick else 30,
        duration=args.duration,
        require_failover=args.pool_mode == "transaction",
        timeout=args.timeout,
    )
    passed = drive.report(chaos, outcome, run_log, args.pool_mode)
    if not passed or fleet.crashes:
        say(f"process logs kept in {keep_logs(root)}")
    return 0 if passed else 1


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.cluster", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--jobs", type=int, default=None, help="how many jobs (default 1200, --quick 200)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer jobs, four faults (the test)")
    parser.add_argument(
        "--pool-mode",
        choices=("transaction", "session"),
        default=topology.DEFAULT_POOL_MODE,
        help=f"PgBouncer's pool_mode (default {topology.DEFAULT_POOL_MODE}); in transaction mode "
        "a frozen scheduler that stops all admission fails the run",
    )
    parser.add_argument("--lease", type=float, default=4.0, help="DRACONIC_LEASE_SECONDS (4)")
    parser.add_argument("--timeout", type=float, default=780, help="hang guard in seconds")
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds the submissions last (240, --quick 60)",
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    args.jobs = args.jobs or (200 if args.quick else 1200)
    args.duration = args.duration or (60 if args.quick else 240)
    args.seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if os.geteuid() != 0 or shutil.which("ip") is None:
        say("needs root and iproute2's ip (network namespaces)")
        return 2
    lock = open("/run/lock/draconic-cluster.lock", "w")  # noqa: SIM115  (held until exit)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        say("another make cluster is running on this machine (one at a time: the names are shared)")
        return 2
    for name in netns.remove_leftovers():
        say(f"removed a leftover of an earlier run: {name}")
    root = Path(tempfile.mkdtemp(prefix="draconic-cluster-"))
    os.environ[RUN_LOG_ENV] = str(root / "runs.log")
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
        left = netns.remove_leftovers()
        say(f"removed {len(left)} namespaces and links")
        if args.keep:
            say(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
