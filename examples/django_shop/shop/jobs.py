"""A Draconic ``@job_type`` function: submitted by name (``client.submit("shop.jobs.
stock_report", {"threshold": 5})``), it gets the running job's context as ``ctx``."""

from __future__ import annotations

from typing import Any

from draconic_sdk import job_type
from shop.models import Product


@job_type("shop.jobs.stock_report", max_attempts=2, timeout_seconds=60)
def stock_report(ctx: Any, threshold: int = 5) -> dict[str, Any]:
    """The products whose stock is below ``threshold``, and the shop's total stock."""
    low = list(Product.objects.filter(stock__lt=threshold).values_list("sku", flat=True))
    ctx.log(f"{len(low)} product(s) below {threshold}", low=low)
    total = sum(Product.objects.values_list("stock", flat=True))
    return {"low": low, "total_stock": total}
