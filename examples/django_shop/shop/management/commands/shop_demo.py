"""``manage.py shop_demo``: the shop at work. Seeds two products, then in one transaction
enqueues a restock (django.tasks), a label print (Celery) and, after the commit, a stock
report (``@job_type``) that waits for the restock; waits for the three and prints what ``get_result`` and the jobs say,
as JSON. ``--rollback`` enqueues the first two in a transaction that rolls back, and prints
their ids: Draconic never hears of them."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from draconic_sdk import Client
from shop.celery_tasks import print_labels
from shop.models import Product
from shop.tasks import restock


class RolledBack(Exception):
    pass


class Command(BaseCommand):
    help = "Enqueue the shop's three job types and print their results."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rollback", action="store_true")
        parser.add_argument("--timeout", type=float, default=120)

    def handle(self, *args: Any, **options: Any) -> None:
        Product.objects.get_or_create(sku="TEA-1", defaults={"name": "Green tea", "stock": 2})
        Product.objects.get_or_create(sku="MUG-1", defaults={"name": "Mug", "stock": 9})
        if options["rollback"]:
            self.stdout.write(json.dumps(self._rolled_back()))
            return
        with transaction.atomic():
            restocked = restock.enqueue("TEA-1", count=5)
            labels = print_labels.delay("MUG-1", copies=3)
        with Client(settings.DRACONIC_URL, settings.DRACONIC_TOKEN) as client:
            # After the restock (a graph across the bridges: the job depends on the task's).
            report = client.submit(
                "shop.jobs.stock_report", {"threshold": 5}, depends_on=[restocked.id]
            )
            done = client.wait([restocked.id, labels.id, report.id], timeout=options["timeout"])
        result = restock.get_result(restocked.id)
        self.stdout.write(
            json.dumps(
                {
                    "restock": {
                        "id": result.id,
                        "status": str(result.status),
                        "return_value": result.return_value if result.is_finished else None,
                        "worker_ids": result.worker_ids,
                    },
                    "labels": {"id": labels.id, "status": done[1].status, "result": done[1].result},
                    "report": {"id": report.id, "status": done[2].status, "result": done[2].result},
                    "products": list(Product.objects.values("sku", "stock", "labels_printed")),
                }
            )
        )

    def _rolled_back(self) -> dict[str, str]:
        try:
            with transaction.atomic():
                restocked = restock.enqueue("TEA-1", count=100)
                labels = print_labels.delay("MUG-1", copies=100)
                raise RolledBack
        except RolledBack:
            pass
        return {"restock": restocked.id, "labels": labels.id}
