"""The services of the ``db`` and ``lb`` hosts: PostgreSQL (a cluster of its own, initdb into
the run's temporary directory), Redis, PgBouncer in front of PostgreSQL, and HAProxy in front
of the two ``api`` hosts. Each listens on its host's address only."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

from tests.chaos.services import Postgres
from tests.cluster.netns import Host

PG_PORT = 5432
PGBOUNCER_PORT = 6432
REDIS_PORT = 6379
LB_PORT = 8080
REST_PORT = 8000
WS_PORT = 8001


class HostPostgres(Postgres):
    """``tests.chaos.services.Postgres`` run inside the ``db`` namespace, on its address."""

    def __init__(self, root: Path, host: Host) -> None:
        super().__init__(root, PG_PORT)
        self.host = host

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self.owner:
            command = ["runuser", "-u", self.owner, "--", *command]
        done = subprocess.run(
            self.host.wrap(command),
            capture_output=True,
            text=True,
            timeout=120,
            start_new_session=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed: {done.stdout}{done.stderr}")

    def init(self) -> None:
        super().init()
        with open(self.data / "pg_hba.conf", "a") as hba:  # the test network only
            hba.write(f"host all all {self.host.address.rsplit('.', 1)[0]}.0/24 trust\n")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.socket_dir} -h {self.host.address} "
            "-c fsync=off -c max_connections=300"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )

    def url(self, database: str) -> str:
        return f"postgres://postgres@{self.host.address}:{self.port}/{database}"


def postgres_owned(path: Path) -> Path:
    """``path`` made readable by the ``postgres`` user (PgBouncer refuses to run as root)."""
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)
    return path


def pgbouncer_argv(root: Path, db: Host, pool_mode: str, database: str) -> list[str]:
    """PgBouncer on ``db``:6432 in ``pool_mode`` (``transaction`` or ``session``) in front of
    the PostgreSQL of the same host; every client may use ``database`` as ``postgres``."""
    userlist = root / "pgbouncer-users.txt"
    userlist.write_text('"postgres" ""\n')
    postgres_owned(userlist)
    ini = root / "pgbouncer.ini"
    ini.write_text(
        f"""[databases]
{database} = host={db.address} port={PG_PORT} dbname={database}

[pgbouncer]
listen_addr = {db.address}
listen_port = {PGBOUNCER_PORT}
unix_socket_dir =
auth_type = trust
admin_users = postgres
auth_file = {userlist}
pool_mode = {pool_mode}
max_client_conn = 1000
default_pool_size = 120
server_reset_query = DISCARD ALL
ignore_startup_parameters = extra_float_digits,options
"""
    )
    postgres_owned(ini)
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    return db.wrap(["runuser", "-u", "postgres", "--", binary, str(ini)])


def redis_argv(root: Path, db: Host) -> list[str]:
    binary = shutil.which("redis-server") or "redis-server"
    return db.wrap(
        [
            binary,
            "--port",
            str(REDIS_PORT),
            "--bind",
            db.address,
            "--protected-mode",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(root),
        ]
    )


def haproxy_argv(root: Path, lb: Host, apis: list[Host]) -> list[str]:
    """HAProxy on ``lb``: ``/jobs/stream`` to the api hosts' daphne, the rest to their
    gunicorn, each backend health-checked, a request that found a dead server sent again to
    the other one (``retry-on`` + ``redispatch``)."""
    rest = "\n".join(
        f"    server {h.name} {h.address}:{REST_PORT} check inter 500 fall 2 rise 2" for h in apis
    )
    ws = "\n".join(
        f"    server {h.name} {h.address}:{WS_PORT} check inter 500 fall 2 rise 2" for h in apis
    )
    cfg = root / "haproxy.cfg"
    cfg.write_text(
        f"""global
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    retries 3
    option redispatch
    retry-on all-retryable-errors

frontend draconic
    bind {lb.address}:{LB_PORT}
    acl stream path_beg /jobs/stream
    use_backend ws if stream
    default_backend rest

backend rest
    balance roundrobin
    option httpchk GET /healthz
{rest}

backend ws
    balance roundrobin
    option httpchk GET /healthz
{ws}
"""
    )
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    return lb.wrap([binary, "-f", str(cfg), "-db"])
