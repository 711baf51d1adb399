from __future__ import annotations

from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"

    def ready(self) -> None:
        from draconic.storage import check_export_storage
        from workers import signals  # noqa: F401  (connects the Celery signal receivers)
        from workers.handlers import load_builtin_types

        load_builtin_types()
        check_export_storage()  # data_export writes there
