"""``python manage.py waitforservices``: wait for PostgreSQL and Redis; create the database."""

from __future__ import annotations

import time
from typing import Any

import psycopg2
import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from psycopg2 import sql


class Command(BaseCommand):
    help = "Wait until PostgreSQL and Redis answer, creating the database if it is missing."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--timeout", type=float, default=30.0)

    def handle(self, *args: Any, **options: Any) -> None:
        deadline = time.monotonic() + options["timeout"]
        self._wait(
            "PostgreSQL",
            settings.DATABASE_URL,
            self._postgres,
            deadline,
            "start it (e.g. `pg_ctlcluster 15 main start`) or set DATABASE_URL",
        )
        self._wait(
            "Redis",
            settings.REDIS_URL,
            self._redis,
            deadline,
            "start it (e.g. `redis-server --daemonize yes`) or set REDIS_URL",
        )

    def _wait(self, name: str, url: str, probe: Any, deadline: float, hint: str) -> None:
        said = False
        while True:
            try:
                probe()
                self.stdout.write(f"{name} is up at {_safe(url)}")
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise CommandError(
                        f"{name} is not reachable at {_safe(url)}: {exc}\n{hint}"
                    ) from exc
                if not said:
                    self.stdout.write(f"waiting for {name} at {_safe(url)} ...")
                    said = True
                time.sleep(0.5)

    def _postgres(self) -> None:
        db = settings.DATABASES["default"]
        params: dict[str, Any] = {
            k: v
            for k, v in {
                "host": db.get("HOST"),
                "port": db.get("PORT"),
                "user": db.get("USER"),
                "password": db.get("PASSWORD"),
                "connect_timeout": 3,
            }.items()
            if v
        }
        try:
            psycopg2.connect(dbname=db["NAME"], **params).close()
        except psycopg2.OperationalError as exc:
            if "does not exist" not in str(exc):
                raise
            conn = psycopg2.connect(dbname="postgres", **params)
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
            conn.close()
            self.stdout.write(f"created database {db['NAME']}")

    def _redis(self) -> None:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3).ping()


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url
