"""``manage.py createpooltoken NAME``: a worker token for an external pool, printed once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.pools.services import pool_token_create


class Command(BaseCommand):
    help = "Create a worker token for the external worker pool NAME (created if new); printed once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("pool")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            key = pool_token_create(pool=options["pool"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(key)
