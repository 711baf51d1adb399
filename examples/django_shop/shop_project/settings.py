"""The shop's settings: its own database (a SQLite file by default, ``SHOP_DATABASE``), and
Draconic as the backend of its django.tasks and its Celery tasks.

Environment: ``DRACONIC_URL`` and ``DRACONIC_TOKEN`` (an API token of a Draconic user: the
one the shop submits jobs as); the worker (``manage.py draconic_worker``) also reads its pool's
worker token, see the README."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("SHOP_SECRET_KEY", "shop-example-not-a-secret")
DEBUG = os.environ.get("SHOP_DEBUG", "true") == "true"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django_tasks",
    "shop",
]
# The Draconic worker runtime's Django app (`manage.py draconic_worker`), from draconic-sdk.
if importlib.util.find_spec("draconic_sdk.django") is not None:
    INSTALLED_APPS.append("draconic_sdk.django")

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SHOP_DATABASE", str(BASE_DIR / "var" / "shop.sqlite3")),
        # The worker runs jobs in threads next to the shop's requests: wait for the lock.
        "OPTIONS": {"timeout": 20},
    }
}

DRACONIC_URL = os.environ.get("DRACONIC_URL", "http://127.0.0.1:8000")
DRACONIC_TOKEN = os.environ.get("DRACONIC_TOKEN", "")

# django.tasks: every @task of the shop runs as a Draconic job.
TASKS = {
    "default": {
        "BACKEND": "draconic_sdk.django_tasks.DraconicBackend",
        "OPTIONS": {"url": DRACONIC_URL, "token": DRACONIC_TOKEN},
    }
}

# Celery: the bridge reads these (the app is configured with the CELERY namespace).
CELERY_DRACONIC_URL = DRACONIC_URL
CELERY_DRACONIC_TOKEN = DRACONIC_TOKEN
CELERY_TASK_SERIALIZER = "json"

# The shop's own Draconic worker (`python manage.py draconic_worker`, draconic_sdk.django): the
# pool it registers, its worker token (`python manage.py createpooltoken shop` on Draconic),
# Draconic's broker, and the modules whose @task functions, Celery tasks and @job_type
# functions it serves.
DRACONIC = {
    "URL": DRACONIC_URL,
    "WORKER_TOKEN": os.environ.get("DRACONIC_WORKER_TOKEN", ""),
    "BROKER_URL": os.environ.get("DRACONIC_BROKER_URL", "redis://127.0.0.1:6379/0"),
    "POOL": os.environ.get("SHOP_POOL", "shop"),
    "APPS": ["shop.tasks", "shop.celery_tasks", "shop.jobs"],
    "CONCURRENCY": int(os.environ.get("SHOP_WORKER_CONCURRENCY", "2")),
}

LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}
