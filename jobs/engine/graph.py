"""The dependency graph as stored: queries over ``JobDependency`` (the pure graph functions
are in ``resolver``)."""

from __future__ import annotations

from uuid import UUID

from django.db import connection

from jobs.engine import prepared, statements


def descendant_ids(*job_ids: UUID | str) -> set[UUID]:
    """Every job that depends on any of ``job_ids``, directly or through others (one query,
    however many)."""
    if not job_ids:
        return set()
    with connection.cursor() as cursor:
        ids = [str(i) for i in job_ids]
        prepared.execute(cursor, (statements.DESCENDANTS, {"job_ids": ids}))
        return {row["id"] for row in prepared.rows(cursor)}
