"""The hosts of ``make cluster`` and what runs on each: ``db`` (PostgreSQL, Redis, PgBouncer),
``lb`` (HAProxy), ``api1``/``api2`` (gunicorn on ``draconic.wsgi`` for REST, daphne on
``draconic.asgi`` for the WebSocket feed), ``w1``-``w3`` (a Celery worker each) and
``s1``/``s2`` (``manage.py scheduler`` each). The platform's processes reach PostgreSQL only
through PgBouncer on ``db``, and Redis on ``db``, by address."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.cluster import netns, services
from tests.cluster.netns import Host
from tests.harness import Supervisor, scheduler_argv, wait_until, worker_argv

DB = Host("db", 10)
LB = Host("lb", 20)
APIS = [Host("api1", 11), Host("api2", 12)]
WORKERS = [Host("w1", 31), Host("w2", 32), Host("w3", 33)]
SCHEDULERS = [Host("s1", 41), Host("s2", 42)]
HOSTS = [DB, LB, *APIS, *WORKERS, *SCHEDULERS]
DATABASE = "cluster"
WORKER_CONCURRENCY = 4
#: The pool mode of PgBouncer when none is given. Transaction mode is the goal (issue 16); it
#: needs the engine without SQL-level PREPARE and without the session advisory lock (branch
#: pgb), so until that is merged the cluster runs in session mode.
DEFAULT_POOL_MODE = "session"


def host_env(base: dict[str, str], lease: float) -> dict[str, str]:
    """The environment of every platform process on the hosts."""
    env = dict(base)
    env.update(
        DATABASE_URL=f"postgres://postgres@{DB.address}:{services.PGBOUNCER_PORT}/{DATABASE}",
        REDIS_URL=f"redis://{DB.address}:{services.REDIS_PORT}/0",
        CELERY_BROKER_URL=f"redis://{DB.address}:{services.REDIS_PORT}/0",
        ALLOWED_HOSTS=",".join([LB.address, *(h.address for h in APIS), "localhost"]),
        DRACONIC_DIAGNOSTIC_TYPES="true",
        DRACONIC_THROTTLE_USER="1000000/min",
        DRACONIC_LEASE_SECONDS=str(lease),
        CELERY_WORKER_CONCURRENCY=str(WORKER_CONCURRENCY),
    )
    return env


def start_db(root: Path, fleet: Supervisor, pool_mode: str) -> services.HostPostgres:
    pg = services.HostPostgres(root, DB)
    pg.init()
    pg.start()
    fleet.start("redis", services.redis_argv(root, DB))
    fleet.start("pgbouncer", services.pgbouncer_argv(root, DB, pool_mode, DATABASE))
    return pg


def start_platform(fleet: Supervisor, env: dict[str, str]) -> None:
    """gunicorn + daphne on each api host, HAProxy on lb, the workers and the schedulers."""
    python = sys.executable
    for api in APIS:
        gunicorn = [python, "-m", "gunicorn", "draconic.wsgi:application"]
        gunicorn += ["-b", f"{api.address}:{services.REST_PORT}", "-w", "2", "--timeout", "30"]
        fleet.start(f"{api.name}-rest", api.wrap(gunicorn), env)
        daphne = [python, "-m", "daphne", "-b", api.address, "-p", str(services.WS_PORT)]
        fleet.start(f"{api.name}-ws", api.wrap([*daphne, "draconic.asgi:application"]), env)
    fleet.start("haproxy", services.haproxy_argv(fleet.log_dir, LB, APIS))
    for worker in WORKERS:
        argv = worker_argv(worker.name, concurrency=WORKER_CONCURRENCY, heartbeat=True)
        fleet.start(worker.name, worker.wrap(argv), env)
    for scheduler in SCHEDULERS:
        fleet.start(scheduler.name, scheduler.wrap(scheduler_argv()), env)


def lb_url() -> str:
    return f"http://{LB.address}:{services.LB_PORT}"


def wait_for_balancer(fleet: Supervisor) -> None:
    """Until both api hosts answer /healthz through the balancer."""
    import urllib.request

    def healthy() -> bool:
        for name in fleet.procs:
            fleet.check(name)
        for api in APIS:
            for port in (services.REST_PORT, services.WS_PORT):
                try:
                    url = f"http://{api.address}:{port}/healthz"
                    with urllib.request.urlopen(url, timeout=3) as answer:
                        if answer.status != 200:
                            return False
                except OSError:
                    return False
        return True

    wait_until(healthy, timeout=180, interval=0.5, message="the api hosts to answer /healthz")


def build_network() -> None:
    """The bridge and every host; the caller removes them with ``netns.remove_leftovers``."""
    netns.make_bridge()
    for host in HOSTS:
        netns.make_host(host)
