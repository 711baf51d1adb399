"""WSGI entry point of the baseline, served by the same gunicorn command as the platform."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.baseline.settings"

application = get_wsgi_application()
