"""An index for the metrics' trailing-window query (admin_api.metrics.completed_window):
completed jobs by completion time, so throughput and percentiles read only the last hour."""

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("jobs", "0001_initial")]

    operations = [
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                fields=["completed_at"],
                condition=models.Q(status="completed"),
                name="job_completed_at_idx",
            ),
        ),
    ]
