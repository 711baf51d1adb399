# Every log row records the transaction that wrote it and its statement's snapshot, so that a
# cursor resumes without a gap (jobs/live/resume.py).
#
# Written for a big, busy log table: the columns are added without a default (a catalog
# change, no rewrite: a volatile default would rewrite every row under an exclusive lock),
# then given their default for the rows to come; older rows keep NULL, which resume reads as
# "no snapshot" (it falls back to the ids after the cursor). The BRIN index is built
# concurrently, so inserts go on meanwhile (hence atomic = False).

import django.contrib.postgres.indexes
import django.db.models.functions.comparison
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

CURRENT_SNAPSHOT = django.db.models.functions.comparison.Cast(
    models.Func(function="pg_current_snapshot", output_field=models.TextField()),
    models.TextField(),
)
CURRENT_XACT_ID = django.db.models.functions.comparison.Cast(
    django.db.models.functions.comparison.Cast(
        models.Func(function="pg_current_xact_id", output_field=models.TextField()),
        models.TextField(),
    ),
    models.BigIntegerField(),
)

ADD_COLUMNS = """
ALTER TABLE jobs_executionlog ADD COLUMN xact_id bigint NULL, ADD COLUMN snapshot text NULL;
ALTER TABLE jobs_executionlog
    ALTER COLUMN xact_id SET DEFAULT (pg_current_xact_id()::text::bigint),
    ALTER COLUMN snapshot SET DEFAULT (pg_current_snapshot()::text);
"""

DROP_COLUMNS = """
ALTER TABLE jobs_executionlog DROP COLUMN xact_id, DROP COLUMN snapshot;
"""


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("jobs", "0004_log_job_without_db_constraint"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(ADD_COLUMNS, DROP_COLUMNS)],
            state_operations=[
                migrations.AddField(
                    model_name="executionlog",
                    name="snapshot",
                    field=models.TextField(
                        db_default=CURRENT_SNAPSHOT, editable=False, null=True
                    ),
                ),
                migrations.AddField(
                    model_name="executionlog",
                    name="xact_id",
                    field=models.BigIntegerField(
                        db_default=CURRENT_XACT_ID, editable=False, null=True
                    ),
                ),
            ],
        ),
        AddIndexConcurrently(
            model_name="executionlog",
            index=django.contrib.postgres.indexes.BrinIndex(
                fields=["xact_id"], name="log_xact_id_brin"
            ),
        ),
    ]
