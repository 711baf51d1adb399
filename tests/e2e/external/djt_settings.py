"""The Django settings of the team's project whose ``@task`` and Celery tasks the
django.tasks backend and Celery bridge tests send (``tests.e2e.djt_tasks``), as its own
Draconic worker (``manage.py draconic_worker``) runs them: not Draconic's settings, and no
database of Draconic's."""

from __future__ import annotations

import os

SECRET_KEY = "djt-team-project-test-key"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django_tasks",
    "draconic_sdk.django",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
TASKS = {
    "default": {
        "BACKEND": "draconic_sdk.django_tasks.DraconicBackend",
        "OPTIONS": {"url": os.environ.get("DRACONIC_URL", ""), "token": ""},
    }
}
CELERY_TASK_SERIALIZER = "json"
DRACONIC = {
    "URL": os.environ.get("DRACONIC_URL", ""),
    "WORKER_TOKEN": os.environ.get("DRACONIC_WORKER_TOKEN", ""),
    "BROKER_URL": os.environ.get("DRACONIC_BROKER_URL", ""),
    "POOL": "djt",
    "APPS": ["tests.e2e.djt_tasks"],
    "CONCURRENCY": 2,
}
