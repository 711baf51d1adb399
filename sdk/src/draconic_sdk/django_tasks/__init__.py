"""django.tasks on Draconic: ``DraconicBackend`` sends ``@task`` functions' calls as jobs, and
``source.job_types`` lets a project's Draconic worker run them (registered on import).
Needs ``draconic-sdk[django]`` (the django-tasks backport on Django 5.2; Django 6's own
``django.tasks`` where that is installed)."""

from __future__ import annotations

from draconic_sdk import bridging
from draconic_sdk.django_tasks import source
from draconic_sdk.django_tasks.backend import DraconicBackend
from draconic_sdk.django_tasks.results import AttemptLost, AttemptTimedOut

bridging.register_source(source.job_types)

__all__ = ["AttemptLost", "AttemptTimedOut", "DraconicBackend"]
