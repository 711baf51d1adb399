"""A django.tasks ``@task``: enqueued with ``restock.enqueue(...)``, run by the shop's Draconic
worker as the job type ``shop.tasks.restock``."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_tasks import task

from shop.models import Product


@task(priority=10)
def restock(sku: str, count: int) -> int:
    """Adds ``count`` to the product's stock; returns the new stock."""
    with transaction.atomic():
        Product.objects.filter(sku=sku).update(
            stock=F("stock") + count, restocked_at=timezone.now()
        )
        return Product.objects.get(sku=sku).stock
