from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0013_worker_pools"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="priority_rank",
            field=models.SmallIntegerField(db_default=0, default=0),
        ),
    ]
