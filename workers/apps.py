from __future__ import annotations

from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"

    def ready(self) -> None:
        from workers import signals  # noqa: F401  (connects the Celery signal receivers)
        from workers.handlers import load_builtin_types

        load_builtin_types()
