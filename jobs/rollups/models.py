"""The charts' rollup: per (grain, bucket, job type), what finished in that bucket.

One row per closed minute (kept ``MINUTE_KEEP``) and per closed hour (kept ``HOUR_KEEP``)
and job type, plus one row with ``type = ""`` for all types together, written for every
closed bucket even when nothing finished in it: that row is how the sweep knows a bucket is
done. The table is bounded: (1 + types) x (minutes of a day + hours of 8 days) rows at most.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from django.db import models

#: The type of the row that counts every type of a bucket.
ALL_TYPES = ""


class Grain(models.TextChoices):
    MINUTE = "minute", "minute"
    HOUR = "hour", "hour"


#: How long the buckets of each grain are kept.
KEEP = {Grain.MINUTE: timedelta(days=1), Grain.HOUR: timedelta(days=8)}
#: The length of a bucket of each grain.
WIDTH = {Grain.MINUTE: timedelta(minutes=1), Grain.HOUR: timedelta(hours=1)}


class JobRollup(models.Model):
    """What finished (``completed_at`` in [bucket, bucket + width)) per type in one bucket:
    how many completed and failed, and over the jobs that ran (``started_at`` set), the
    time waiting (start of the last attempt minus the later of created and run_at) and the
    time running (finish minus start of the last attempt), p50 and p95, in seconds."""

    id = models.BigAutoField(primary_key=True)
    grain = models.CharField(max_length=8, choices=Grain.choices)
    bucket = models.DateTimeField()
    type = models.CharField(max_length=64, blank=True)
    completed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    wait_p50 = models.FloatField(null=True)
    wait_p95 = models.FloatField(null=True)
    run_p50 = models.FloatField(null=True)
    run_p95 = models.FloatField(null=True)

    class Meta:
        db_table = "jobs_jobrollup"
        ordering: ClassVar = ["grain", "bucket", "type"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["grain", "bucket", "type"], name="rollup_bucket_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.grain} {self.bucket:%Y-%m-%d %H:%M} {self.type or '(all)'}"
