"""``manage.py revokepooltokens NAME [--key KEY]``: revoke the worker tokens of an external
pool (all of them, or the one whose key is KEY), e.g. a leaked one."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.pools.models import WorkerPool
from jobs.pools.services import pool_tokens_revoke


class Command(BaseCommand):
    help = "Revoke the worker tokens of the external worker pool NAME (or only --key's)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("pool")
        parser.add_argument(
            "--key", help="revoke only this token (the key createpooltoken printed)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        pool, key = options["pool"], options["key"]
        if not WorkerPool.objects.filter(name=pool).exists():
            raise CommandError(f"no worker pool {pool!r}")
        revoked = pool_tokens_revoke(pool=pool, key=key)
        if key is not None and not revoked:
            raise CommandError(f"that key is not a live token of the pool {pool!r}")
        self.stdout.write(f"revoked {revoked} token(s) of the pool {pool}")
