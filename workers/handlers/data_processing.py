"""The ``data_processing`` job type: descriptive statistics over a list of numbers.

Payload::

    data         a list of 1..1,000,000 finite numbers, |x| <= 1e150 (no booleans) (required)
    percentiles  a list of up to 100 numbers in 0..100; default [25, 50, 75]     (optional)

Result::

    count, sum, mean, min, max, median,
    variance, stdev      sample (divides by n - 1); null when count is 1
    pvariance, pstdev    population (divides by n)
    percentiles          {"25": ..., "99.9": ...}  keyed by the percentile as written by %g
    percentile_method    "linear"

Methods. Sums use ``math.fsum`` (exactly rounded), or exact integer arithmetic when every
item is an integer. The variance is two-pass: the mean first, then the fsum of squared
deviations, corrected by the (tiny) fsum of the deviations, which keeps it accurate where the
one-pass "sum of squares minus square of sum" formula cancels catastrophically. Percentiles use
linear interpolation between closest ranks on the sorted data: for percentile p, h = (n - 1) *
p / 100 and the value is x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)]); this
is numpy's default ("linear"), Excel's PERCENTILE.INC and ``statistics.quantiles(...,
method="inclusive")``. The median is the 50th percentile (the mean of the middle two when n
is even). The magnitude bound keeps every square and sum finite, so the result is valid JSON.

Big inputs are processed in chunks of ``CHUNK`` items with ``ctx.check_cancelled()`` between.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from jobs.types import Handler, HandlerError, JobContext, register

MAX_ITEMS = 1_000_000
MAX_MAGNITUDE = 1e150
MAX_PERCENTILES = 100
DEFAULT_PERCENTILES = (25, 50, 75)
KNOWN_FIELDS = frozenset({"data", "percentiles"})
#: Items between two cancellation checks.
CHUNK = 100_000


def _is_number(value: Any) -> bool:
    """A JSON number usable here: int or float, not bool, finite, within ``MAX_MAGNITUDE``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE


def _data_error(data: Any) -> str | None:
    if not isinstance(data, list) or not 1 <= len(data) <= MAX_ITEMS:
        return f"must be a list of 1 to {MAX_ITEMS} numbers"
    for index, value in enumerate(data):
        if not _is_number(value):
            return f"item {index} is not a finite number of magnitude at most {MAX_MAGNITUDE:g}"
    return None


def _percentiles_error(percentiles: Any) -> str | None:
    if not isinstance(percentiles, list) or len(percentiles) > MAX_PERCENTILES:
        return f"must be a list of at most {MAX_PERCENTILES} numbers"
    for index, value in enumerate(percentiles):
        if not _is_number(value) or not 0 <= value <= 100:
            return f"item {index} is not a number from 0 to 100"
    return None


def percentile(ordered: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100) of non-empty sorted ``ordered`` by linear
    interpolation between closest ranks (see the module docstring)."""
    h = (len(ordered) - 1) * p / 100
    low = math.floor(h)
    if low + 1 >= len(ordered):
        return ordered[-1]
    return ordered[low] + (h - low) * (ordered[low + 1] - ordered[low])


def _label(p: float) -> str:
    return f"{p:g}"


@register("data_processing")
class DataProcessingHandler(Handler):
    """Computes descriptive statistics of ``payload.data``; see the module docstring."""

    def validate_payload(self, payload: Mapping[str, Any]) -> dict[str, str]:
        errors: dict[str, str] = {}
        unknown = sorted(set(payload) - KNOWN_FIELDS)
        if unknown:
            errors["payload"] = f"unknown fields: {', '.join(unknown)[:200]}"
        data_error = "is required" if "data" not in payload else _data_error(payload["data"])
        if data_error:
            errors["payload.data"] = data_error
        if "percentiles" in payload:
            error = _percentiles_error(payload["percentiles"])
            if error:
                errors["payload.percentiles"] = error
        return errors

    def run(self, ctx: JobContext) -> Any:
        errors = self.validate_payload(ctx.payload)
        if errors:  # stored before a validation change, or written around the API
            raise HandlerError(f"invalid payload: {errors}", permanent=True)
        data: list[float] = ctx.payload["data"]
        wanted = ctx.payload.get("percentiles", list(DEFAULT_PERCENTILES))
        ctx.log("computing statistics", count=len(data), percentiles=len(wanted))
        result = describe(data, wanted, check=ctx.check_cancelled)
        ctx.log("statistics computed", count=result["count"], mean=result["mean"])
        return result


def _chunked_fsum(values: Sequence[float], check: Any, transform: Any = None) -> float:
    """``math.fsum`` of ``values`` (optionally transformed), calling ``check()`` per chunk.
    Partial fsums are added with fsum again, so the result stays exactly rounded."""
    partials = []
    for start in range(0, len(values), CHUNK):
        check()
        chunk = values[start : start + CHUNK]
        partials.append(math.fsum(chunk if transform is None else map(transform, chunk)))
    return math.fsum(partials)


def describe(
    data: Sequence[float], wanted: Sequence[float], *, check: Any = lambda: None
) -> dict[str, Any]:
    """The statistics of non-empty ``data`` (validated numbers) as a JSON-ready dict."""
    n = len(data)
    all_ints = all(isinstance(x, int) for x in data)
    total: float = sum(data) if all_ints else _chunked_fsum(data, check)
    mean = total / n
    deviation_sum = _chunked_fsum(data, check, lambda x: x - mean)
    squares = _chunked_fsum(data, check, lambda x: (x - mean) ** 2)
    ss = max(squares - deviation_sum * deviation_sum / n, 0.0)
    check()
    ordered = sorted(data)
    check()
    return {
        "count": n,
        "sum": total,
        "mean": mean,
        "min": ordered[0],
        "max": ordered[-1],
        "median": percentile(ordered, 50),
        "variance": ss / (n - 1) if n > 1 else None,
        "stdev": math.sqrt(ss / (n - 1)) if n > 1 else None,
        "pvariance": ss / n,
        "pstdev": math.sqrt(ss / n),
        "percentiles": {_label(p): percentile(ordered, p) for p in wanted},
        "percentile_method": "linear",
    }
