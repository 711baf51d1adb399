"""``manage.py shop_types``: the job types the shop's worker serves, as it registers them
(JSON, one ``JobType.describe()`` per type)."""

from __future__ import annotations

import importlib
import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from draconic_sdk import bridging


class Command(BaseCommand):
    help = "Print the job types of the shop's Draconic worker."

    def handle(self, *args: Any, **options: Any) -> None:
        import draconic_sdk.celery_bridge
        import draconic_sdk.django_tasks  # noqa: F401  # their sources register on import

        found = []
        for name in settings.DRACONIC["APPS"]:
            found += bridging.job_types_of(importlib.import_module(name))
        self.stdout.write(json.dumps([t.describe() for t in found], indent=2))
