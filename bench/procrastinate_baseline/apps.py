from __future__ import annotations

from django.apps import AppConfig


class ProcrastinateBaselineConfig(AppConfig):
    name = "bench.procrastinate_baseline"
    label = "procrastinate_baseline"
