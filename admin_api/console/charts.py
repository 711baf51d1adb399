"""``/dashboard/charts/``: jobs completed and failed per bucket, and the time waiting and the
time running (p50, p95), over the last hour, day or week, for all types or one.

Read from the scheduler's rollup (``jobs.rollups``), never from the jobs table: two queries
whatever the number of jobs (the chosen range's all-types rows with the chosen type's, and
the types seen in the range with their totals). Drawn in the browser by the vendored uPlot
(``static/dashboard/vendor/``), from the data embedded in the page. Platform-wide figures:
operators and on-call viewers only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET

from admin_api import access
from jobs.rollups.models import ALL_TYPES, Grain, JobRollup
from jobs.rollups.sweep import floor_to

#: range -> (grain of its buckets, how far back it reaches)
RANGES: dict[str, tuple[Grain, timedelta]] = {
    "hour": (Grain.MINUTE, timedelta(hours=1)),
    "day": (Grain.MINUTE, timedelta(days=1)),
    "week": (Grain.HOUR, timedelta(days=7)),
}
TYPE_MAX = 64


def _bad(field: str, message: str) -> JsonResponse:
    return JsonResponse({field: [message]}, status=400)


def chart_series(grain: Grain, since: Any, type_: str) -> dict[str, list[Any]]:
    """Per bucket from ``since`` on: its start (epoch seconds), completed, failed and the four
    percentiles of ``type_`` (all types when empty). A bucket with no row of the type had
    none of its jobs finish: zero jobs, no percentiles. One query."""
    rows = JobRollup.objects.filter(
        grain=grain, bucket__gte=since, type__in={ALL_TYPES, type_}
    ).order_by("bucket", "type")
    names = ("completed", "failed", "wait_p50", "wait_p95", "run_p50", "run_p95")
    series: dict[str, list[Any]] = {"x": [], **{n: [] for n in names}}
    by_bucket: dict[Any, dict[str, Any]] = {}
    for row in rows.values("bucket", "type", *names):
        by_bucket.setdefault(row["bucket"], {})[row["type"]] = row
    for bucket, kinds in by_bucket.items():
        if ALL_TYPES not in kinds:
            continue  # not aggregated yet (a sweep in progress)
        row = kinds.get(type_, {})
        series["x"].append(int(bucket.timestamp()))
        for name in names:
            default = 0 if name in ("completed", "failed") else None
            series[name].append(row.get(name, default))
    return series


def type_totals(grain: Grain, since: Any) -> list[dict[str, Any]]:
    """The types that finished jobs in the range, with their totals. One query."""
    rows = (
        JobRollup.objects.filter(grain=grain, bucket__gte=since)
        .exclude(type=ALL_TYPES)
        .values("type")
        .annotate(completed=Sum("completed"), failed=Sum("failed"))
        .order_by("type")
    )
    return [dict(row) for row in rows]


@login_required
@require_GET
def charts_view(request: HttpRequest) -> HttpResponse:
    if not access.sees_everything(request.user):
        raise PermissionDenied("the charts are platform-wide: operators and viewers only")
    range_ = request.GET.get("range", "hour")
    if range_ not in RANGES:
        return _bad("range", f"must be one of {', '.join(RANGES)}")
    type_ = request.GET.get("type", ALL_TYPES)
    if len(type_) > TYPE_MAX:
        return _bad("type", f"at most {TYPE_MAX} characters")
    grain, span = RANGES[range_]
    since = floor_to(timezone.now() - span, grain)
    series = chart_series(grain, since, type_)
    context = {
        "ranges": list(RANGES),
        "range": range_,
        "type": type_,
        "grain": grain.value,
        "types": type_totals(grain, since),
        "series": series,
        "totals": {"completed": sum(series["completed"]), "failed": sum(series["failed"])},
    }
    return render(request, "dashboard/charts.html", context)


urlpatterns = [path("charts/", charts_view, name="dashboard-charts")]
