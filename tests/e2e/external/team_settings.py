"""The team's own Django project settings (not Draconic's): its own database (SQLite in
``TEAM_DB``), its own apps, and ``DRACONIC`` for ``manage.py draconic_worker``."""

from __future__ import annotations

import os

SECRET_KEY = "team-project-test-key"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "draconic_sdk.django",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("TEAM_DB", ":memory:"),
    }
}
TEAM_NAME = "the team's own settings"
DRACONIC = {
    "URL": os.environ.get("DRACONIC_URL", ""),
    "WORKER_TOKEN": os.environ.get("DRACONIC_WORKER_TOKEN", ""),
    "BROKER_URL": os.environ.get("DRACONIC_BROKER_URL", ""),
    "POOL": "ext",
    "APPS": ["tests.e2e.external.team_jobs"],
    "CONCURRENCY": 1,
}
