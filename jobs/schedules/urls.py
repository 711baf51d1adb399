from __future__ import annotations

from django.urls import path

from jobs.api.urls import seed_path
from jobs.schedules import api

ID = r"(?P<schedule_id>[^/]+)"

# Each path without a trailing slash (as documented) and with one, as /jobs/ takes them.
urlpatterns = [
    path("", api.ScheduleListCreateApi.as_view(), name="schedules"),
    *seed_path(ID, api.ScheduleDetailApi.as_view(), "schedule-detail"),
    *seed_path(rf"{ID}/trigger", api.ScheduleTriggerApi.as_view(), "schedule-trigger"),
    *seed_path(rf"{ID}/pause", api.SchedulePauseApi.as_view(), "schedule-pause"),
    *seed_path(rf"{ID}/resume", api.ScheduleResumeApi.as_view(), "schedule-resume"),
]
