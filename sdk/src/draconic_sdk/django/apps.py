from __future__ import annotations

from django.apps import AppConfig


class DraconicConfig(AppConfig):
    name = "draconic_sdk.django"
    label = "draconic_sdk"
    verbose_name = "Draconic worker"
