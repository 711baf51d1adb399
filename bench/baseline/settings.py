"""The platform's settings plus the baseline app and its URLs: same middleware, same token
auth, same throttles, same database settings."""

from __future__ import annotations

from draconic.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "bench.baseline"]  # noqa: F405
ROOT_URLCONF = "bench.baseline.urls"
