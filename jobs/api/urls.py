from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.urls import URLPattern, path, re_path

from jobs.api import exports, views


def seed_path(regex: str, view: Callable[..., Any], name: str) -> list[URLPattern]:
    """The seed's path ``regex`` (no trailing slash) and the same path with one.

    Only the seed's spelling is documented in the OpenAPI schema; the other is an alias a
    client may use (``schema=None`` hides it), so no endpoint appears twice in the schema.
    """
    alias = view.view_class.as_view(schema=None)  # type: ignore[attr-defined]
    return [
        re_path(rf"^{regex}$", view, name=name),
        re_path(rf"^{regex}/$", alias, name=f"{name}-slash"),
    ]


ID = r"(?P<job_id>[^/]+)"

# The seed's paths, exactly; a trailing slash is accepted too where the seed has none.
urlpatterns = [
    path("", views.JobListCreateApi.as_view(), name="jobs"),
    path("batch/", views.JobBatchApi.as_view(), name="jobs-batch"),
    re_path(r"^batch$", views.JobBatchApi.as_view(schema=None), name="jobs-batch-noslash"),
    *seed_path(ID, views.JobDetailApi.as_view(), "job-detail"),
    *seed_path(rf"{ID}/cancel", views.JobCancelApi.as_view(), "job-cancel"),
    *seed_path(rf"{ID}/logs", views.JobLogsApi.as_view(), "job-logs"),
    *seed_path(rf"{ID}/export", exports.JobExportApi.as_view(), "job-export"),
    re_path(rf"^{ID}/dependencies/$", views.JobDependenciesApi.as_view(), name="job-dependencies"),
    re_path(
        rf"^{ID}/dependencies$",
        views.JobDependenciesApi.as_view(schema=None),
        name="job-dependencies-noslash",
    ),
]
