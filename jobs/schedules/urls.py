from __future__ import annotations

from django.urls import path, re_path

from jobs.schedules import api

ID = r"(?P<schedule_id>[^/]+)"

# Each path with or without a trailing slash, as /jobs/ takes them; the schema shows one.
urlpatterns = [
    path("", api.ScheduleListCreateApi.as_view(), name="schedules"),
    re_path(rf"^{ID}$", api.ScheduleDetailApi.as_view(), name="schedule-detail"),
    re_path(rf"^{ID}/$", api.ScheduleDetailApi.as_view(schema=None)),
    re_path(rf"^{ID}/trigger/?$", api.ScheduleTriggerApi.as_view(), name="schedule-trigger"),
    re_path(rf"^{ID}/pause/?$", api.SchedulePauseApi.as_view(), name="schedule-pause"),
    re_path(rf"^{ID}/resume/?$", api.ScheduleResumeApi.as_view(), name="schedule-resume"),
]
