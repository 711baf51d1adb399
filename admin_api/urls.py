from __future__ import annotations

from django.urls import path

from admin_api import views
from jobs.api.urls import seed_path

# The seed's paths, exactly; a trailing slash is accepted too where the seed has none.
urlpatterns = [
    *seed_path("health", views.HealthApi.as_view(), "admin-health"),
    *seed_path("metrics", views.MetricsApi.as_view(), "admin-metrics"),
    path("dlq/", views.DeadLetterListApi.as_view(), name="admin-dlq"),
    path("dlq/retry/", views.DeadLetterBulkRetryApi.as_view(), name="admin-dlq-retry-bulk"),
    *seed_path(
        r"dlq/(?P<job_id>[^/]+)/retry", views.DeadLetterRetryApi.as_view(), "admin-dlq-retry"
    ),
]
