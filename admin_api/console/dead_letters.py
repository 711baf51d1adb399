"""The dead-letter queue by group, for the console: the groups (one per fingerprint: job type,
exception class and message shape, ``jobs.engine.fingerprint``), a group's letters, and the
two actions on a group or on one letter, re-drive and discard, each audited in the
transaction of its change.

Every read is a constant number of queries over ``deadletter_group_idx`` (the open letters by
fingerprint and age): the groups in one aggregate and one look-up of a sample letter each,
a group's letters by keyset (``created_at``, ``id``) newest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.db.models import Q, QuerySet

from admin_api import audit
from admin_api.serializers import BULK_REDRIVE_LIMIT
from jobs.engine import deadletter
from jobs.engine.fingerprint import error_shape
from jobs.models import DeadLetter

#: The groups shown, most recently seen first.
MAX_GROUPS = 200
#: A group's letters per page.
LETTERS_PAGE = 50

# The open letters' groups, with their size and first and last seen; the newest letter of
# each is its sample. An index-only scan of deadletter_group_idx (fingerprint, created_at, id)
# where requeued_at IS NULL AND discarded_at IS NULL; locks nothing.
GROUPS = """
SELECT fingerprint, count(*) AS letters, min(created_at) AS first_seen,
       max(created_at) AS last_seen, max(id) AS sample_id
FROM jobs_deadletter
WHERE requeued_at IS NULL AND discarded_at IS NULL
GROUP BY fingerprint
ORDER BY last_seen DESC, fingerprint
LIMIT %(limit)s
"""


@dataclass(frozen=True)
class Group:
    fingerprint: str
    letters: int
    first_seen: datetime
    last_seen: datetime
    job_type: str
    reason: str
    shape: str
    """The exception class and message shape the group's letters share."""
    sample_error: str
    sample_job_id: UUID


def open_letters() -> QuerySet[DeadLetter]:
    return DeadLetter.objects.filter(requeued_at__isnull=True, discarded_at__isnull=True)


def groups() -> list[Group]:
    """The groups of open letters, most recently seen first. Two queries."""
    with connection.cursor() as cursor:
        cursor.execute(GROUPS, {"limit": MAX_GROUPS})
        names = [c.name for c in cursor.description]
        rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    samples = {
        d.id: d
        for d in DeadLetter.objects.filter(id__in=[r["sample_id"] for r in rows])
        .select_related("job")
        .only("id", "reason", "error", "job__id", "job__type")
    }
    return [
        Group(
            fingerprint=r["fingerprint"],
            letters=r["letters"],
            first_seen=r["first_seen"],
            last_seen=r["last_seen"],
            job_type=samples[r["sample_id"]].job.type,
            reason=samples[r["sample_id"]].reason,
            shape=error_shape(samples[r["sample_id"]].error),
            sample_error=samples[r["sample_id"]].error[:500],
            sample_job_id=samples[r["sample_id"]].job_id,
        )
        for r in rows
        if r["sample_id"] in samples
    ]


def group_letters(fingerprint: str, *, before: tuple[datetime, int] | None) -> list[DeadLetter]:
    """One page of a group's open letters, newest first, from ``before`` (the keyset of the
    last letter of the page before); one more than a page, to tell whether one follows."""
    qs = open_letters().filter(fingerprint=fingerprint)
    if before is not None:
        at, letter_id = before
        qs = qs.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=letter_id))
    qs = qs.select_related("job").only(
        "id", "reason", "error", "attempts", "created_at", "job__id", "job__type", "job__owner_id"
    )
    return list(qs.order_by("-created_at", "-id")[: LETTERS_PAGE + 1])


def target_letters(*, group: str | None, letter: int | None) -> QuerySet[DeadLetter]:
    """The open letters an action names: a whole group, or one letter."""
    if group is not None:
        return open_letters().filter(fingerprint=group)
    return open_letters().filter(id=letter or 0)


def count_targets(letters: QuerySet[DeadLetter]) -> int:
    """How many one action would touch (at most ``BULK_REDRIVE_LIMIT``: one transaction)."""
    return min(letters.count(), BULK_REDRIVE_LIMIT)


def _pick(letters: QuerySet[DeadLetter], most: int) -> list[tuple[int, UUID]]:
    """The newest ``most`` letters (at most the bulk limit): (letter id, job id)."""
    most = max(0, min(most, BULK_REDRIVE_LIMIT))
    return list(letters.order_by("-created_at", "-id").values_list("id", "job_id")[:most])


def redrive(
    *, actor: Any, letters: QuerySet[DeadLetter], most: int, target: str
) -> tuple[int, int]:
    """Re-drive at most ``most`` of ``letters`` (and what their failure cancelled), audited;
    (how many jobs left the queue, how many descendants came back)."""
    picked = _pick(letters, most)
    with transaction.atomic():
        result = deadletter.dead_letter_redrive(job_ids=[j for _, j in picked], by=actor)
        if result.requeued:
            audit.record(
                actor,
                "redrive",
                target,
                job_ids=result.requeued,
                detail={"revived": len(result.revived)},
            )
    return len(result.requeued), len(result.revived)


def discard(*, actor: Any, letters: QuerySet[DeadLetter], most: int, target: str) -> int:
    """Discard at most ``most`` of ``letters``, audited; how many were discarded."""
    picked = _pick(letters, most)
    with transaction.atomic():
        job_ids = deadletter.dead_letter_discard(letter_ids=[i for i, _ in picked], by=actor)
        if job_ids:
            audit.record(actor, "discard", target, job_ids=job_ids)
    return len(job_ids)
