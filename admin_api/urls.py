from __future__ import annotations

from django.urls import path

from admin_api import limits, views
from admin_api.console import pausing
from jobs.api.urls import seed_path

# The seed's paths, exactly; a trailing slash is accepted too where the seed has none.
urlpatterns = [
    *seed_path("health", views.HealthApi.as_view(), "admin-health"),
    *seed_path("metrics", views.MetricsApi.as_view(), "admin-metrics"),
    path("dlq/", views.DeadLetterListApi.as_view(), name="admin-dlq"),
    path("dlq/retry/", views.DeadLetterBulkRetryApi.as_view(), name="admin-dlq-retry-bulk"),
    path("limits/", limits.LimitListApi.as_view(), name="admin-limits"),
    path("pauses/", pausing.PauseListApi.as_view(), name="admin-pauses"),
    *seed_path(r"pauses/(?P<pause_id>[^/]+)", pausing.PauseDetailApi.as_view(), "admin-pause"),
    *seed_path(r"limits/(?P<limit_id>[^/]+)", limits.LimitDetailApi.as_view(), "admin-limit"),
    *seed_path(
        r"dlq/(?P<job_id>[^/]+)/retry", views.DeadLetterRetryApi.as_view(), "admin-dlq-retry"
    ),
]
