"""Per-process set-up of long-running processes (workers, the scheduler)."""

from __future__ import annotations

from django.conf import settings


def use_persistent_db_connections() -> None:
    """Keep PostgreSQL connections between jobs in a long-running process.

    Web processes keep ``DB_CONN_MAX_AGE`` (0 by default: persistent connections leak under an
    ASGI server), but a worker or the scheduler runs one thread that would otherwise reconnect
    for every job. Connections are still health-checked before reuse (``conn_health_checks``)
    and recycled after ``WORKER_DB_CONN_MAX_AGE`` seconds.
    """
    for database in settings.DATABASES.values():
        database["CONN_MAX_AGE"] = settings.WORKER_DB_CONN_MAX_AGE
