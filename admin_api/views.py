"""Operator endpoints: health, metrics and the dead-letter queue. Staff only."""

from __future__ import annotations

import time
from typing import Any

from django.db import connection
from django.db.models import Count
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import ledger, lifecycle, selectors
from jobs.api import ERROR, Pagination
from jobs.models import DeadLetter, DeadLetterReason, Job, Priority
from jobs.redis_client import get_redis
from jobs.serializers import DeadLetterOutputSerializer


class StaffApi(APIView):
    permission_classes = [IsAdminUser]


def _probe(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _postgres() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


class HealthApi(StaffApi):
    @extend_schema(operation_id="admin_health", responses={200: OpenApiTypes.OBJECT, 503: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        checks = {"postgres": _probe(_postgres), "redis": _probe(lambda: get_redis().ping())}
        healthy = all(c["ok"] for c in checks.values())
        failing = [name for name, c in checks.items() if not c["ok"]]
        body = {"status": "ok" if healthy else "unavailable", "failing": failing, "checks": checks}
        return Response(body, status=200 if healthy else 503)


class MetricsApi(StaffApi):
    @extend_schema(operation_id="admin_metrics", responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        by_status = dict(Job.objects.values_list("status").annotate(n=Count("id")).order_by())
        by_priority = {
            str(Priority(p).label): n
            for p, n in Job.objects.values_list("priority").annotate(n=Count("id")).order_by()
        }
        dlq = dict(
            DeadLetter.objects.filter(requeued_at__isnull=True)
            .values_list("reason").annotate(n=Count("id")).order_by()
        )
        usage = ledger.ledger_usage()
        return Response(
            {
                "jobs_by_status": by_status,
                "jobs_by_priority": by_priority,
                "dead_letters_by_reason": dlq,
                "resources": {
                    "cpu_units": {"used": usage.cpu_units, "capacity": usage.capacity_cpu},
                    "memory_mb": {"used": usage.memory_mb, "capacity": usage.capacity_memory},
                    "leases": usage.leases,
                },
            }
        )


class DeadLetterFilterSerializer(serializers.Serializer):  # type: ignore[type-arg]
    type = serializers.CharField(max_length=64, required=False)
    reason = serializers.ChoiceField(choices=DeadLetterReason.values, required=False)


class DeadLetterListApi(StaffApi):
    @extend_schema(
        operation_id="admin_dlq_list",
        parameters=[DeadLetterFilterSerializer],
        responses={200: DeadLetterOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        filters = DeadLetterFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = Pagination()
        page = paginator.paginate_queryset(
            selectors.dead_letter_list(**filters.validated_data), request, view=self
        )
        return paginator.get_paginated_response(DeadLetterOutputSerializer(page, many=True).data)


class DeadLetterRetryApi(StaffApi):
    @extend_schema(
        operation_id="admin_dlq_retry",
        request=None,
        responses={
            200: inline_serializer("Requeued", fields={"job_id": serializers.UUIDField(), "status": serializers.CharField()}),
            404: OpenApiResponse(ERROR, description="The job is not in the dead-letter queue."),
        },
    )
    def post(self, request: Request, job_id: str) -> Response:
        parsed = selectors.parse_uuid(job_id)
        if parsed is None or not lifecycle.dead_letter_requeue(job_id=parsed, by=request.user):
            raise NotFound(f"job {job_id!s:.64} is not in the dead-letter queue")
        return Response({"job_id": str(parsed), "status": "pending"})


class DeadLetterBulkRetryApi(StaffApi):
    @extend_schema(
        operation_id="admin_dlq_retry_bulk",
        request=DeadLetterFilterSerializer,
        responses={200: inline_serializer("BulkRequeued", fields={"requeued": serializers.IntegerField()})},
    )
    def post(self, request: Request) -> Response:
        filters = DeadLetterFilterSerializer(data=request.data)
        filters.is_valid(raise_exception=True)
        ids = list(selectors.dead_letter_list(**filters.validated_data).values_list("job_id", flat=True)[:10000])
        requeued = sum(1 for i in ids if lifecycle.dead_letter_requeue(job_id=i, by=request.user))
        return Response({"requeued": requeued})
