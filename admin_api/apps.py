from __future__ import annotations

from django.apps import AppConfig


class AdminApiConfig(AppConfig):
    name = "admin_api"
    label = "admin_api"
