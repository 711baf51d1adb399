from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class ShopConfig(AppConfig):
    name = "shop"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The Celery bridge's start-up check: a task that cannot run on Draconic (a pickle
        # serializer, bind=True) stops `check`, `migrate` and the worker, saying what to do.
        from django.conf import settings
        from shop_project.celery import app

        from draconic_sdk.celery_bridge import django_check

        checks.register(django_check(app, settings.DRACONIC["APPS"]))
