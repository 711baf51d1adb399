from __future__ import annotations

from django.urls import path, re_path

from jobs import api

# The seed's paths, exactly; a trailing slash is accepted too where the seed has none.
urlpatterns = [
    path("", api.JobListCreateApi.as_view(), name="jobs"),
    path("batch/", api.JobBatchApi.as_view(), name="jobs-batch"),
    re_path(r"^(?P<job_id>[^/]+)/?$", api.JobDetailApi.as_view(), name="job-detail"),
    re_path(r"^(?P<job_id>[^/]+)/cancel/?$", api.JobCancelApi.as_view(), name="job-cancel"),
    re_path(r"^(?P<job_id>[^/]+)/logs/?$", api.JobLogsApi.as_view(), name="job-logs"),
    re_path(r"^(?P<job_id>[^/]+)/dependencies/?$", api.JobDependenciesApi.as_view(), name="job-dependencies"),
]
