"""A PgBouncer in transaction mode for the end-to-end tests (``DRACONIC_TEST_PGBOUNCER=1``).

Debian's ``/usr/sbin/pgbouncer``, configured in a temporary directory: it listens on a free
port of 127.0.0.1, trusts the ``postgres`` user (``auth_file`` lists it, as ``trust`` wants)
and pools every database of the local PostgreSQL (``* = host=127.0.0.1 port=5432``) in
``pool_mode = transaction``: each transaction of a client may run on another server
connection, so nothing a process leaves in its session survives. PgBouncer refuses to run as
root; it drops to the ``postgres`` user (``-u``) when started by root.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from tests import harness
from tests.harness import free_port, wait_until

BINARY = os.environ.get("PGBOUNCER", "/usr/sbin/pgbouncer")
#: Where its port is looked for: the tests' range, above what the servers of a test take
#: (18240 by default). It moves with ``DRACONIC_TEST_PORT_BASE``, as every port of a run does:
#: two runs on one machine that each picked the same free port at the same moment would
#: otherwise share one PgBouncer, the loser's ``pg_isready`` answered by the winner's.
#: ``DRACONIC_TEST_PGBOUNCER_PORT`` sets it outright.
PORT_BASE = int(os.environ.get("DRACONIC_TEST_PGBOUNCER_PORT", harness.PORT_BASE + 90))

CONFIG = """\
[databases]
* = host={pg_host} port={pg_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {dir}/users.txt
pool_mode = transaction
max_client_conn = 1000
default_pool_size = {pool_size}
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
"""


class PgBouncer:
    """One PgBouncer process; ``start()`` returns once it accepts connections."""

    def __init__(self, *, pg_host: str = "127.0.0.1", pg_port: int = 5432, pool_size: int = 10):
        """``pool_size`` server connections are shared by every client: few, so that the
        clients' transactions keep landing on each other's sessions."""
        self.pg_host, self.pg_port, self.pool_size = pg_host, pg_port, pool_size
        self.dir = Path(tempfile.mkdtemp(prefix="draconic-pgbouncer-"))
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> int:
        self.port = free_port(PORT_BASE)
        (self.dir / "users.txt").write_text('"postgres" ""\n')
        config = CONFIG.format(
            pg_host=self.pg_host,
            pg_port=self.pg_port,
            port=self.port,
            dir=self.dir,
            pool_size=self.pool_size,
        )
        (self.dir / "pgbouncer.ini").write_text(config)
        self.dir.chmod(0o755)
        for path in self.dir.iterdir():
            path.chmod(0o644)
        argv = [BINARY]
        if os.geteuid() == 0:
            argv += ["-u", "postgres"]
        with open(self.dir / "pgbouncer.log", "ab") as log:
            self.proc = subprocess.Popen(
                [*argv, str(self.dir / "pgbouncer.ini")],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        wait_until(self._accepts, timeout=30, message=f"PgBouncer on port {self.port}")
        return self.port

    def server_port(self, dbname: str) -> int:
        """The port PostgreSQL says it listens on, asked through PgBouncer: not PgBouncer's,
        which is how the processes tell they are pooled (``DRACONIC_DB_POOLED=AUTO``)."""
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=dbname)
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT inet_server_port()")
                row = cursor.fetchone()
                assert row is not None
                (port,) = row
        finally:
            conn.close()
        return int(port)

    def _accepts(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"PgBouncer exited at start-up:\n{self.log()}")
        probe = ["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        return subprocess.run(probe, check=False).returncode == 0

    def log(self) -> str:
        path = self.dir / "pgbouncer.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # immediate shutdown
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)
