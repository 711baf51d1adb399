from __future__ import annotations

from django.urls import path, re_path

from admin_api import views

urlpatterns = [
    re_path(r"^health/?$", views.HealthApi.as_view(), name="admin-health"),
    re_path(r"^metrics/?$", views.MetricsApi.as_view(), name="admin-metrics"),
    path("dlq/", views.DeadLetterListApi.as_view(), name="admin-dlq"),
    path("dlq/retry/", views.DeadLetterBulkRetryApi.as_view(), name="admin-dlq-retry-bulk"),
    re_path(r"^dlq/(?P<job_id>[^/]+)/retry/?$", views.DeadLetterRetryApi.as_view(), name="admin-dlq-retry"),
]
