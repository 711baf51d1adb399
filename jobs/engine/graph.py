"""The dependency graph as stored: queries over ``JobDependency`` (the pure graph functions
are in ``resolver``)."""

from __future__ import annotations

from uuid import UUID

from django.db import connection

from jobs.engine import prepared, statements


def descendant_ids(job_id: UUID | str) -> set[UUID]:
    """Every job that depends on ``job_id``, directly or through others."""
    with connection.cursor() as cursor:
        prepared.execute(cursor, (statements.DESCENDANTS, {"job_id": str(job_id)}))
        return {row["id"] for row in prepared.rows(cursor)}
