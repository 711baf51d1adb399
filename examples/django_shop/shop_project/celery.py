"""The shop's Celery app. One setting, ``task_cls``, sends every task's ``.delay()`` to
Draconic (``draconic_sdk.celery_bridge``) instead of a Celery broker; the tasks' bodies and
call sites are the ones the shop had. ``draconic_url``/``draconic_token`` come from Django's
settings (``CELERY_DRACONIC_URL``, ``CELERY_DRACONIC_TOKEN``)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop_project.settings")

app = Celery("shop_project", task_cls="draconic_sdk.celery_bridge:DraconicTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
