"""``python manage.py draconic_worker``: run this project's Draconic pool worker, configured
by ``settings.DRACONIC`` (see ``draconic_sdk.django``); options override it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from draconic_sdk.worker.app import WorkerConfig, run_worker


class Command(BaseCommand):
    help = "Run this project's external Draconic worker (settings.DRACONIC)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pool", help="overrides DRACONIC['POOL']")
        parser.add_argument("--concurrency", "-c", type=int, help="overrides CONCURRENCY")
        parser.add_argument("--name", help="this worker's name")
        parser.add_argument(
            "--shutdown-grace",
            type=float,
            help="overrides SHUTDOWN_GRACE_SECONDS: seconds a stopping worker lets running jobs "
            "finish before it hands them back (default 30)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        values = dict(getattr(settings, "DRACONIC", {}) or {})
        overrides = {
            "pool": "POOL",
            "concurrency": "CONCURRENCY",
            "name": "NAME",
            "shutdown_grace": "SHUTDOWN_GRACE_SECONDS",
        }
        for option, key in overrides.items():
            if options.get(option) is not None:
                values[key] = options[option]
        try:
            config = WorkerConfig.from_mapping(values)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        run_worker(config)
