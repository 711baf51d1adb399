"""The shop's Django project. Its Celery app is loaded with Django, as Celery's Django guide
does, so ``@shared_task`` functions bind to it."""

from __future__ import annotations

from shop_project.celery import app as celery_app

__all__ = ("celery_app",)
