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

#: The groups shown (the first in fingerprint order, when there are more), most recently
#: seen first.
MAX_GROUPS = 200
#: A group counts its letters up to this many (shown as "10000+").
COUNT_CAP = BULK_REDRIVE_LIMIT
#: A group's letters per page.
LETTERS_PAGE = 50

# The open letters' groups, with their size and first and last seen; the newest letter of
# each is its sample. A loose index scan of deadletter_group_idx (fingerprint, created_at, id)
# where requeued_at IS NULL AND discarded_at IS NULL: the recursion steps from one fingerprint
# to the next (one index probe each, at most ``limit`` groups, in fingerprint order), and each
# group's figures are probes of that group's range: its oldest and its newest entry, and its
# count up to ``count_cap`` (a group that big shows "10000+": an action takes at most that
# many at once anyway). Bounded work per group, whatever the number of letters. Locks nothing.
GROUPS = """
WITH RECURSIVE groups(fingerprint, n) AS (
    (SELECT fingerprint, 1 FROM jobs_deadletter
     WHERE requeued_at IS NULL AND discarded_at IS NULL
     ORDER BY fingerprint LIMIT 1)
    UNION ALL
    SELECT (SELECT d.fingerprint FROM jobs_deadletter AS d
            WHERE d.requeued_at IS NULL AND d.discarded_at IS NULL
              AND d.fingerprint > groups.fingerprint
            ORDER BY d.fingerprint LIMIT 1), groups.n + 1
    FROM groups
    WHERE groups.fingerprint IS NOT NULL AND groups.n < %(limit)s)
SELECT g.fingerprint, n.letters, f.first_seen, l.last_seen, l.sample_id
FROM groups AS g
CROSS JOIN LATERAL (
    SELECT count(*) AS letters FROM (
        SELECT 1 FROM jobs_deadletter
        WHERE requeued_at IS NULL AND discarded_at IS NULL AND fingerprint = g.fingerprint
        ORDER BY created_at, id LIMIT %(count_cap)s) AS counted) AS n
CROSS JOIN LATERAL (
    SELECT created_at AS first_seen FROM jobs_deadletter
    WHERE requeued_at IS NULL AND discarded_at IS NULL AND fingerprint = g.fingerprint
    ORDER BY created_at, id LIMIT 1) AS f
CROSS JOIN LATERAL (
    SELECT created_at AS last_seen, id AS sample_id FROM jobs_deadletter
    WHERE requeued_at IS NULL AND discarded_at IS NULL AND fingerprint = g.fingerprint
    ORDER BY created_at DESC, id DESC LIMIT 1) AS l
WHERE g.fingerprint IS NOT NULL
ORDER BY l.last_seen DESC, g.fingerprint
"""


@dataclass(frozen=True)
class Group:
    fingerprint: str
    letters: int
    """Up to ``COUNT_CAP``; ``capped`` says there are at least that many."""
    first_seen: datetime
    last_seen: datetime
    job_type: str
    reason: str
    shape: str
    """The exception class and message shape the group's letters share."""
    sample_error: str
    sample_job_id: UUID

    @property
    def capped(self) -> bool:
        return self.letters >= COUNT_CAP


def open_letters() -> QuerySet[DeadLetter]:
    return DeadLetter.objects.filter(requeued_at__isnull=True, discarded_at__isnull=True)


def groups() -> list[Group]:
    """The groups of open letters, most recently seen first. Two queries."""
    with connection.cursor() as cursor:
        cursor.execute(GROUPS, {"limit": MAX_GROUPS, "count_cap": COUNT_CAP})
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
    """How many one action would touch (at most ``BULK_REDRIVE_LIMIT``: one transaction;
    counted no further)."""
    return letters.order_by("-created_at", "-id")[:BULK_REDRIVE_LIMIT].count()


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
