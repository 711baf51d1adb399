from __future__ import annotations

from django.urls import path

from jobs.pools import api

urlpatterns = [
    path("pools/register", api.RegisterApi.as_view(), name="workers-register"),
    path("pools/heartbeat", api.HeartbeatApi.as_view(), name="workers-heartbeat"),
    path("attempts/start", api.StartApi.as_view(), name="workers-start"),
    path("attempts/renew", api.RenewApi.as_view(), name="workers-renew"),
    path("attempts/log", api.LogApi.as_view(), name="workers-log"),
    path("attempts/progress", api.ProgressApi.as_view(), name="workers-progress"),
    path("attempts/parents", api.ParentsApi.as_view(), name="workers-parents"),
    path("attempts/complete", api.CompleteApi.as_view(), name="workers-complete"),
    path("attempts/fail", api.FailApi.as_view(), name="workers-fail"),
    path("attempts/hand-back", api.HandBackApi.as_view(), name="workers-hand-back"),
]
