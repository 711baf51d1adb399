"""What the operator endpoints accept: as strict as ``POST /jobs/`` (unknown fields are a 400
naming them, every choice error lists the valid choices): dead-letter re-drives and limit
rules."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from jobs.api.serializers import (
    QueryFilterSerializer,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictIntegerField,
    StrictSerializer,
)
from jobs.engine.limits import rule_problems
from jobs.models import DeadLetterReason, Limit

#: Most dead letters one bulk re-drive moves (one transaction); repeat until it answers 0.
BULK_REDRIVE_LIMIT = 10_000


class DeadLetterFilterSerializer(QueryFilterSerializer):
    type = StrictCharField(max_length=255, required=False, allow_blank=True)
    reason = StrictChoiceField(choices=DeadLetterReason.values, required=False, allow_blank=True)


class DeadLetterBulkRetryInputSerializer(StrictSerializer):
    """Which open dead letters to re-drive. An empty body used to mean all of them, so a typo
    (``{"ids": "x"}``, the unknown field dropped) re-drove the whole queue: now it takes at
    least one filter, or ``"all": true`` alone."""

    type = StrictCharField(max_length=255, required=False, help_text="Only jobs of this type.")
    reason = StrictChoiceField(
        choices=DeadLetterReason.values, required=False, help_text="Only letters of this reason."
    )
    all = StrictBooleanField(
        default=False,
        help_text="Re-drive every open dead letter; required when no filter is given.",
    )
    dry_run = StrictBooleanField(
        default=False,
        help_text="Change nothing; answer how many would be re-driven (would_requeue).",
    )
    descendants = StrictBooleanField(
        default=True,
        help_text="Also bring back the descendants their failure cancelled (false: leave them).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        filtered = "type" in attrs or "reason" in attrs
        if attrs["all"] and filtered:
            raise serializers.ValidationError(
                {"all": ['"all": true re-drives every open dead letter; give it without filters']}
            )
        if not attrs["all"] and not filtered:
            raise serializers.ValidationError(
                'give a filter (type, reason), or "all": true to re-drive every open dead letter'
            )
        return attrs

    def filters(self) -> dict[str, str]:
        """The validated filters, as ``selectors.dead_letter_list`` takes them."""
        return {k: v for k, v in self.validated_data.items() if k in ("type", "reason")}


class DeadLetterRetryInputSerializer(StrictSerializer):
    """Re-drive one dead letter; an empty body is fine."""

    descendants = StrictBooleanField(
        default=True,
        help_text="Also bring back the descendants its failure cancelled (false: leave them).",
    )


class LimitInputSerializer(StrictSerializer):
    """A limit rule: ``key`` and at least one of ``max_concurrency`` and ``rate`` (see
    ``jobs.engine.limits``). With PATCH, any of them; null clears a bound."""

    key = StrictCharField(
        max_length=200,
        help_text="type:<job type>, an exact concurrency key, or a prefix pattern (tenant:*).",
    )
    max_concurrency = StrictIntegerField(
        min_value=1,
        required=False,
        allow_null=True,
        help_text="At most this many of its jobs hold a lease (queued or running) at once.",
    )
    rate = StrictCharField(
        max_length=16,
        required=False,
        allow_null=True,
        help_text='At most this many of its jobs start per second, minute or hour: "10/s", '
        '"600/m", "1000/h" (a token bucket of one second\'s worth, at least one).',
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        current = self.instance
        merged = {
            "key": attrs.get("key", getattr(current, "key", "")),
            "max_concurrency": attrs.get(
                "max_concurrency", getattr(current, "max_concurrency", None)
            ),
            "rate": attrs.get("rate", getattr(current, "rate", "")) or "",
        }
        if "max_concurrency" in attrs and attrs["max_concurrency"] is None:
            merged["max_concurrency"] = None
        problems = rule_problems(merged["key"], merged["max_concurrency"], merged["rate"])
        if problems:
            raise serializers.ValidationError({k: [v] for k, v in problems.items()})
        taken = Limit.objects.filter(key=merged["key"])
        if current is not None:
            taken = taken.exclude(pk=current.pk)
        if taken.exists():
            raise serializers.ValidationError({"key": ["a rule with this key exists already"]})
        return merged
