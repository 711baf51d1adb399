"""The pool store. Part of the ``jobs`` app (``jobs.models`` imports these).

A ``WorkerPool`` is a name, the job types its workers registered (``JobType.describe()`` of
each: name, payload schema, defaults, retry) and when a worker of it was last heard from
(registration, heartbeats, lease renewals). A ``WorkerToken`` authenticates the pool's
workers on the worker API; only its SHA-256 is stored, so a token is shown once, when made.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone


class WorkerPool(models.Model):
    name = models.CharField(max_length=100, unique=True)
    types = models.JSONField(
        default=list, blank=True, help_text="JobType.describe() of each type it serves."
    )
    concurrency = models.PositiveIntegerField(
        default=0, help_text="The sum of its live workers' concurrency at their registration."
    )
    workers = models.JSONField(
        default=dict, blank=True, help_text="worker name -> {concurrency, last_seen (epoch s)}."
    )
    last_seen = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def served(self) -> bool:
        """A worker of the pool was heard from within ``DRACONIC_POOL_LIVE_SECONDS``: its types
        are served (``/job-types/`` says so; admission holds their jobs otherwise)."""
        horizon = timezone.now() - timedelta(seconds=settings.DRACONIC_POOL_LIVE_SECONDS)
        return self.last_seen is not None and self.last_seen >= horizon

    def type_names(self) -> list[str]:
        return [str(t.get("name")) for t in self.types if isinstance(t, dict)]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class WorkerToken(models.Model):
    pool = models.ForeignKey(WorkerPool, on_delete=models.CASCADE, related_name="tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"token of pool {self.pool_id}"
