"""Paused job types and priorities. Part of the ``jobs`` app (``jobs.models`` imports it).

A row pauses either one job type or one priority: admission passes over their jobs
(``statements.READY_ORDER`` and ``READY_PAGE`` leave them out, so they block nothing behind
them) until the row is deleted, which requests a dispatch at once. It lives in PostgreSQL, so
a pause outlives every process; ``waiting_on`` names it (``jobs.engine.waiting.paused``)."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q


class Pause(models.Model):
    #: The paused job type; null when the row pauses a priority.
    job_type = models.CharField(max_length=64, null=True, blank=True, unique=True)
    #: The paused priority (``Priority``'s value); null when the row pauses a type.
    priority = models.PositiveSmallIntegerField(null=True, blank=True, unique=True)
    reason = models.CharField(max_length=200, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering: ClassVar = ["id"]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=(Q(job_type__isnull=False) & Q(priority__isnull=True))
                | (Q(job_type__isnull=True) & Q(priority__isnull=False)),
                name="pause_one_type_or_priority",
            ),
        ]

    def __str__(self) -> str:
        return self.target

    @property
    def target(self) -> str:
        """``type send_email`` or ``priority high``."""
        from jobs.models import Priority

        if self.job_type is not None or self.priority is None:
            return f"type {self.job_type}"
        return f"priority {Priority(self.priority).label}"
