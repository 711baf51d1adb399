"""The schedule store. Part of the ``jobs`` app (``jobs.models`` imports these), because a
job records the schedule that fired it and a fire records its job."""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q


class Overlap(models.TextChoices):
    """What a due time does while a job the schedule fired earlier has not finished."""

    ALLOW = "allow", "allow"
    """Fire anyway: runs may overlap."""
    SKIP = "skip", "skip"
    """Fire nothing for this due time (its fire row says ``skipped``)."""
    CANCEL_PREVIOUS = "cancel_previous", "cancel_previous"
    """Cancel the unfinished runs, then fire."""


class Catchup(models.TextChoices):
    """Which due times missed while no scheduler ran are fired when one runs again."""

    NONE = "none", "none"
    """Only a due time at most ``DRACONIC_SCHEDULE_GRACE_SECONDS`` old; missed ones are dropped."""
    LATEST = "latest", "latest"
    """The most recent missed due time, once."""
    ALL = "all", "all"
    """Every missed due time, oldest first, at most ``catchup_limit`` (the most recent ones)."""


class FireOutcome(models.TextChoices):
    FIRED = "fired", "fired"
    """A job was submitted (``job``)."""
    SKIPPED = "skipped", "skipped"
    """The overlap policy ``skip`` held it back: the previous run had not finished."""
    INVALID = "invalid", "invalid"
    """The template no longer validates (say, its job type was removed); ``detail`` says why."""


class Schedule(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="schedules"
    )
    name = models.CharField(max_length=200)
    cron = models.CharField(max_length=200, blank=True, default="")
    interval_seconds = models.PositiveIntegerField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    job = models.JSONField(help_text="The body of POST /jobs/ that each fire submits.")
    overlap = models.CharField(max_length=16, choices=Overlap.choices, default=Overlap.ALLOW)
    catchup = models.CharField(max_length=8, choices=Catchup.choices, default=Catchup.LATEST)
    catchup_limit = models.PositiveIntegerField(default=10)
    start_at = models.DateTimeField(null=True, blank=True)
    end_at = models.DateTimeField(null=True, blank=True)
    paused = models.BooleanField(default=False)
    next_fire_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The earliest due time not fired yet; empty while paused or after end_at.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar = ["-created_at"]
        indexes: ClassVar = [
            # The scheduler's scan: schedules due now, soonest first.
            models.Index(
                fields=["next_fire_at"],
                condition=Q(paused=False, next_fire_at__isnull=False),
                name="schedule_due_idx",
            ),
            models.Index(fields=["owner", "-created_at"], name="schedule_owner_created_idx"),
        ]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=(Q(cron="") & Q(interval_seconds__isnull=False))
                | (~Q(cron="") & Q(interval_seconds__isnull=True)),
                name="schedule_cron_xor_interval",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.cron or f'every {self.interval_seconds}s'})"


class ScheduleFire(models.Model):
    """One due time of a schedule, handled. Unique per (schedule, due time) for the due
    times the clock brings (not for manual triggers): the scheduler inserts it with
    ``ON CONFLICT DO NOTHING`` in the transaction that submits the job, so a second
    scheduler, or one that finishes the work of a killed one, fires nothing twice."""

    id = models.BigAutoField(primary_key=True)
    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="fires")
    due_at = models.DateTimeField()
    manual = models.BooleanField(default=False, help_text="Fired by POST /schedules/{id}/trigger.")
    outcome = models.CharField(max_length=8, choices=FireOutcome.choices)
    detail = models.TextField(blank=True, default="")
    job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering: ClassVar = ["-due_at"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["schedule", "due_at"],
                condition=Q(manual=False),
                name="schedulefire_once_per_due_time",
            ),
        ]
        indexes: ClassVar = [
            models.Index(fields=["schedule", "-due_at"], name="schedulefire_recent_idx")
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id} @ {self.due_at.isoformat()} ({self.outcome})"
