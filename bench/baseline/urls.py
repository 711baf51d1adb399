from __future__ import annotations

from django.urls import path

from bench.baseline import views
from draconic.urls import healthz

urlpatterns = [
    path("healthz", healthz),
    path("baseline/", views.BaselineCreateApi.as_view()),
    path("baseline/batch/", views.BaselineBatchApi.as_view()),
]
