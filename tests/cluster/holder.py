"""Which scheduler host holds the dispatcher's session advisory lock, for the freeze fault to
freeze the holder. With session pooling PgBouncer links each client to one server backend:
the backend that holds the lock (``pg_locks``) leads, through ``SHOW SERVERS`` and ``SHOW
CLIENTS`` on PgBouncer's console, to the client's address. Without a session lock (transaction
pooling, once the engine holds none) there is no holder to find."""

from __future__ import annotations

from typing import Any

from tests.cluster import services, topology


def _rows(cursor: Any, command: str) -> list[dict[str, Any]]:
    cursor.execute(command)
    names = [column.name for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def lock_holder() -> str | None:
    """The name of the scheduler host holding a session advisory lock, or None."""
    import psycopg2
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted")
        pids = {row[0] for row in cursor.fetchall()}
    if not pids:
        return None
    console = psycopg2.connect(
        host=topology.DB.address,
        port=services.PGBOUNCER_PORT,
        user="postgres",
        dbname="pgbouncer",
        connect_timeout=3,
    )
    console.autocommit = True
    try:
        with console.cursor() as cursor:
            servers = _rows(cursor, "SHOW SERVERS")
            clients = _rows(cursor, "SHOW CLIENTS")
    finally:
        console.close()
    links = {s["link"] for s in servers if s.get("remote_pid") in pids}
    addresses = {c["addr"] for c in clients if c["ptr"] in links}
    return next((h.name for h in topology.SCHEDULERS if h.address in addresses), None)
