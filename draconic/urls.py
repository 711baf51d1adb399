from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from admin_api.job_types import JobTypesApi
from admin_api.views import prometheus_metrics
from draconic.apidocs import RedocView, SwaggerView


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: 200 while the process serves. No database, no auth (load balancers)."""
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", prometheus_metrics, name="prometheus-metrics"),
    path("dashboard/", include("admin_api.dashboard")),
    path("jobs/", include("jobs.api.urls")),
    path("job-types/", JobTypesApi.as_view(), name="job-types"),
    path("schedules/", include("jobs.schedules.urls")),
    path("workers/", include("jobs.pools.urls")),
    # The operator API shares /admin/ with the Django admin; its paths come first.
    path("admin/", include("admin_api.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", RedocView.as_view(url_name="schema"), name="redoc"),
]
