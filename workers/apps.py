from __future__ import annotations

from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"

    def ready(self) -> None:
        from django.conf import settings

        from draconic.storage import check_export_storage
        from jobs.types.entrypoints import load_entry_points
        from jobs.types.registry import load_modules
        from workers import control, signals  # noqa: F401  (remote control; signal receivers)
        from workers.handlers import load_builtin_types

        load_builtin_types()
        # A configured type that cannot be loaded stops every process here, at start-up.
        load_modules(settings.DRACONIC_HANDLER_MODULES)
        load_entry_points()  # installed packages' types (group draconic.job_types)
        check_export_storage()  # data_export writes there
