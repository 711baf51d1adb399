"""Per-process set-up of long-running processes (workers, the scheduler)."""

from __future__ import annotations

from django.conf import settings


def use_persistent_db_connections() -> None:
    """Keep PostgreSQL connections between jobs in a long-running process.

    Web processes keep ``DB_CONN_MAX_AGE`` (60 by default; daphne runs requests on a few
    long-lived threads, ``draconic.asgi_wsgi``); a worker or the scheduler keeps its connection
    for ``WORKER_DB_CONN_MAX_AGE`` instead, longer, as it runs one job after another. Connections are recycled after ``WORKER_DB_CONN_MAX_AGE`` seconds. They
    are not health-checked with a ``SELECT 1`` before each job: the worker retries its first
    statement once on a fresh connection instead (``workers.runner._start``), and the
    scheduler reconnects after an error.
    """
    for database in settings.DATABASES.values():
        database["CONN_MAX_AGE"] = settings.WORKER_DB_CONN_MAX_AGE
        database["CONN_HEALTH_CHECKS"] = False
