"""One small table: what the baseline view inserts (a job's columns, nothing else)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class BaselineJob(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    type = models.CharField(max_length=64)
    priority = models.CharField(max_length=16)
    payload = models.JSONField(default=dict)
    cpu_units = models.PositiveIntegerField(default=1)
    memory_mb = models.PositiveIntegerField(default=128)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    timeout_seconds = models.PositiveIntegerField(default=3600)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class BaselineEdge(models.Model):
    """A dependency edge of the batch baseline (stored, never acted on)."""

    job = models.ForeignKey(BaselineJob, on_delete=models.CASCADE, related_name="+")
    depends_on = models.ForeignKey(BaselineJob, on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return f"{self.job_id} -> {self.depends_on_id}"
