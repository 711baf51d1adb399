"""A Draconic ``@job_type`` function: submitted by name (``client.submit("shop.jobs.
stock_report", {"threshold": 5})``), it gets the running job's context as ``ctx``."""

from __future__ import annotations

import time
from typing import Any

from draconic_sdk import job_type
from shop.models import Product


@job_type("shop.jobs.stock_report", max_attempts=2, timeout_seconds=60)
def stock_report(ctx: Any, threshold: int = 5, count_seconds: float = 0.0) -> dict[str, Any]:
    """The products whose stock is below ``threshold``, and the shop's total stock.
    ``count_seconds``: how long the stock take lasts (a big shop's recount; a cancel stops it)."""
    deadline = time.monotonic() + count_seconds
    while time.monotonic() < deadline:
        ctx.check_cancelled()
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
    low = list(Product.objects.filter(stock__lt=threshold).values_list("sku", flat=True))
    ctx.log(f"{len(low)} product(s) below {threshold}", low=low)
    total = sum(Product.objects.values_list("stock", flat=True))
    return {"low": low, "total_stock": total}
