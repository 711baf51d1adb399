"""``/admin/limits/``: the limit rules (``jobs.engine.limits``), staff only. A rule is stored
in PostgreSQL and holds from the next admission pass; its answer shows its current use (the
leases carrying its names, from the Redis ledger; null while Redis is unreachable)."""

from __future__ import annotations

from typing import Any

import redis
from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from admin_api import audit
from admin_api.serializers import LimitInputSerializer
from admin_api.views import StaffApi
from jobs.api.views import ERROR, VALIDATION_ERROR
from jobs.engine import limits, wakeup
from jobs.models import Limit


class LimitOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """The JSON of a rule (for the schema; ``limit_output`` builds it)."""

    id = serializers.IntegerField()
    key = serializers.CharField()
    max_concurrency = serializers.IntegerField(allow_null=True)
    rate = serializers.CharField(allow_null=True)
    in_use = serializers.DictField(
        child=serializers.IntegerField(),
        allow_null=True,
        help_text="Leases (queued or running jobs) per limit name it counts, now.",
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


LIMIT = LimitOutputSerializer


def limit_output(rule: Limit) -> dict[str, Any]:
    try:
        in_use: dict[str, int] | None = limits.rule_in_use(rule.key)
    except redis.RedisError:
        in_use = None
    return {
        "id": rule.pk,
        "key": rule.key,
        "max_concurrency": rule.max_concurrency,
        "rate": rule.rate or None,
        "in_use": in_use,
        "created_at": rule.created_at.isoformat(),
        "updated_at": rule.updated_at.isoformat(),
    }


def _save(rule: Limit, data: dict[str, Any], *, actor: Any) -> Limit:
    action = "limit_update" if rule.pk else "limit_create"
    rule.key, rule.max_concurrency, rule.rate = data["key"], data["max_concurrency"], data["rate"]
    with transaction.atomic():
        rule.save()
        detail = {"max_concurrency": rule.max_concurrency, "rate": rule.rate}
        audit.record(actor, action, f"limit {rule.key}", count=1, detail=detail)
    # A looser rule may let waiting jobs start now.
    transaction.on_commit(wakeup.request_dispatch)
    return rule


class LimitListApi(StaffApi):
    @extend_schema(
        operation_id="admin_limits_list", responses={200: LimitOutputSerializer(many=True)}
    )
    def get(self, request: Request) -> Response:
        return Response([limit_output(r) for r in Limit.objects.order_by("key")])

    @extend_schema(
        operation_id="admin_limits_create",
        request=LimitInputSerializer,
        responses={201: LIMIT, 400: VALIDATION_ERROR},
    )
    def post(self, request: Request) -> Response:
        data = LimitInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(
            limit_output(_save(Limit(), data.validated_data, actor=request.user)), status=201
        )


class LimitDetailApi(StaffApi):
    def _rule(self, limit_id: str) -> Limit:
        # ASCII digits only ("²".isdigit() is true), and short enough for a bigint.
        plain = limit_id.isascii() and limit_id.isdigit() and len(limit_id) <= 18
        rule = Limit.objects.filter(pk=int(limit_id)).first() if plain else None
        if rule is None:
            raise NotFound(f"no limit rule {limit_id!s:.32}")
        return rule

    @extend_schema(operation_id="admin_limits_get", responses={200: LIMIT, 404: ERROR})
    def get(self, request: Request, limit_id: str) -> Response:
        return Response(limit_output(self._rule(limit_id)))

    @extend_schema(
        operation_id="admin_limits_update",
        request=LimitInputSerializer,
        responses={200: LIMIT, 400: VALIDATION_ERROR, 404: ERROR},
    )
    def patch(self, request: Request, limit_id: str) -> Response:
        rule = self._rule(limit_id)
        data = LimitInputSerializer(rule, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(limit_output(_save(rule, data.validated_data, actor=request.user)))

    @extend_schema(
        operation_id="admin_limits_delete",
        responses={204: OpenApiResponse(description="Deleted."), 404: ERROR},
    )
    def delete(self, request: Request, limit_id: str) -> Response:
        rule = self._rule(limit_id)
        with transaction.atomic():
            audit.record(request.user, "limit_delete", f"limit {rule.key}", count=1)
            rule.delete()
        transaction.on_commit(wakeup.request_dispatch)
        return Response(status=204)
