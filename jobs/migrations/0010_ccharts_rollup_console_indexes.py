"""The charts' rollup table (jobs.rollups) and three indexes of jobs_job for the console:
failed jobs by finish time (the rollup sweep), (status, priority) for the counts, (created_at,
id) for everyone's newest jobs. Built concurrently: jobs_job is big and written all the time."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('jobs', '0009_limits_concurrency_key'),
    ]

    operations = [
        migrations.CreateModel(
            name='JobRollup',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('grain', models.CharField(choices=[('minute', 'minute'), ('hour', 'hour')], max_length=8)),
                ('bucket', models.DateTimeField()),
                ('type', models.CharField(blank=True, max_length=64)),
                ('completed', models.PositiveIntegerField(default=0)),
                ('failed', models.PositiveIntegerField(default=0)),
                ('wait_p50', models.FloatField(null=True)),
                ('wait_p95', models.FloatField(null=True)),
                ('run_p50', models.FloatField(null=True)),
                ('run_p95', models.FloatField(null=True)),
            ],
            options={
                'db_table': 'jobs_jobrollup',
                'ordering': ['grain', 'bucket', 'type'],
            },
        ),
        AddIndexConcurrently(
            model_name='job',
            index=models.Index(condition=models.Q(('status', 'failed')), fields=['completed_at'], name='job_failed_at_idx'),
        ),
        AddIndexConcurrently(
            model_name='job',
            index=models.Index(condition=models.Q(('priority__gte', 0)), fields=['status', 'priority'], name='job_status_priority_idx'),
        ),
        AddIndexConcurrently(
            model_name='job',
            index=models.Index(fields=['created_at', 'id'], name='job_created_idx'),
        ),
        migrations.AddConstraint(
            model_name='jobrollup',
            constraint=models.UniqueConstraint(fields=('grain', 'bucket', 'type'), name='rollup_bucket_uniq'),
        ),
    ]
