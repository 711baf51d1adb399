"""daphne serves HTTP through Django's WSGI handler on a few long-lived threads
(``draconic/asgi_wsgi.py``), so a database connection outlives its request.

Under Django's own ASGI handler every request ran in a thread made for it: with
``DB_CONN_MAX_AGE=0`` each request opened a PostgreSQL session of its own (4.5 ms of
PostgreSQL CPU per submit, a fifth of gunicorn's rate under ``make run``), and with a
longer age the sessions of the dead threads piled up. Here a real daphne answers requests
one after another while the test watches the sessions of the test database.
"""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import django.contrib.admin
from django.db import connection
from rest_framework.authtoken.models import Token

from tests.harness import send

#: asyncio's default thread pool: the most threads, so sessions, one daphne may use.
POOL = min(32, (os.cpu_count() or 1) + 4)


def _sessions() -> set[tuple[int, str]]:
    """(pid, start) of every other client session on the test database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, backend_start::text FROM pg_stat_activity WHERE datname = "
            "current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        return {(int(pid), str(start)) for pid, start in cursor.fetchall()}


def test_daphne_keeps_a_few_database_sessions_across_many_requests(platform, api):
    token = Token.objects.get(user=api.user).key
    base = platform.start_web()
    before, seen = _sessions(), set()
    for _ in range(40):
        headers = {"Authorization": f"Token {token}"}
        request = urllib.request.Request(base + "/jobs/", headers=headers)  # noqa: S310
        status, body = send(request)
        assert status == 200, body
        seen |= _sessions() - before
    assert seen, "no session outlived its request"
    assert len(seen) <= POOL, f"{len(seen)} sessions for 40 requests: one per request"
    assert seen <= _sessions(), "the sessions are kept, not closed after each request"


def test_daphne_streams_a_file_whole_and_closes_it(platform):
    base = platform.start_web()
    path = Path(django.contrib.admin.__file__).parent / "static/admin/css/base.css"
    request = urllib.request.Request(base + "/static/admin/css/base.css")  # noqa: S310
    status, body = send(request)
    assert status == 200
    assert body == path.read_text()
