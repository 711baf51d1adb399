"""A Celery ``@shared_task``, unchanged from the shop's Celery days: the app's ``task_cls``
makes ``.delay()`` a Draconic job (``shop.celery_tasks.print_labels``), and its options become
the job type's (two retries with backoff on a locked database, a 30 s timeout, a rate limit
of 60 a minute as the limit rule ``type:shop.celery_tasks.print_labels``)."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError
from django.db.models import F

from shop.models import Product


@shared_task(
    autoretry_for=(OperationalError,),
    max_retries=2,
    retry_backoff=True,
    soft_time_limit=30,
    rate_limit="60/m",
)
def print_labels(sku: str, copies: int = 1) -> int:
    """Prints ``copies`` labels for the product; returns how many it has had."""
    Product.objects.filter(sku=sku).update(labels_printed=F("labels_printed") + copies)
    return Product.objects.get(sku=sku).labels_printed
