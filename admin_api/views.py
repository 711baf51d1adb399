"""Operator endpoints: health, metrics and the dead-letter queue. Staff only."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Callable
from typing import Any

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from admin_api import audit, metrics
from admin_api.access import StaffApiPermission
from admin_api.serializers import (
    BULK_REDRIVE_LIMIT,
    DeadLetterBulkRetryInputSerializer,
    DeadLetterFilterSerializer,
    DeadLetterRetryInputSerializer,
)
from jobs.api import selectors
from jobs.api.output import DeadLetterOutputSerializer
from jobs.api.views import ERROR, VALIDATION_ERROR, Pagination
from jobs.engine import deadletter, ledger
from jobs.ids import parse_uuid
from jobs.pools.services import pools_overview
from jobs.types import registered_types
from jobs.types.registry import missing_modules
from workers.liveness import alive_workers


class StaffApi(APIView):
    permission_classes = [StaffApiPermission]


#: How long the channel-layer probe may take before it counts as down.
CHANNEL_LAYER_TIMEOUT = 2.0


def _probe(check: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
    """Run one check: ``ok`` with its latency, plus what the check returned; a check that
    raises is down, with the error."""
    started = time.perf_counter()
    try:
        extra = check() or {}
        ok = bool(extra.pop("ok", True))
        result: dict[str, Any] = {"ok": ok, **extra}
    except Exception as exc:
        # Named with its library ("redis.ConnectionError"), so the failing dependency is read
        # off the error, not guessed from an address.
        kind = type(exc).__name__
        library = type(exc).__module__.partition(".")[0]
        if library != "builtins":
            kind = f"{library}.{kind}"
        result = {"ok": False, "error": f"{kind}: {exc}"[:300]}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def _postgres() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker() -> None:
    with redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_timeout=2, socket_connect_timeout=2
    ) as client:
        client.ping()


def _ledger() -> dict[str, Any]:
    present = ledger.ledger_is_present()
    if not present:
        return {"ok": False, "error": "the ledger is missing from Redis"}
    return {"ok": True}


def _channel_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")

    async def send() -> None:
        await asyncio.wait_for(
            layer.group_send("draconic.health", {"type": "health.ping"}), CHANNEL_LAYER_TIMEOUT
        )

    async_to_sync(send)()


def _workers() -> dict[str, Any]:
    hostnames = [w.hostname for w in alive_workers()]
    return {"ok": bool(hostnames), "alive": len(hostnames), "hostnames": hostnames}


def _job_types() -> dict[str, Any]:
    """Every module of ``DRACONIC_HANDLER_MODULES`` is loaded here and on every live worker.
    (A process that cannot load one refuses to start; a worker started on an older setting
    would still accept the jobs the API takes and fail them.)"""
    configured = list(settings.DRACONIC_HANDLER_MODULES)
    result: dict[str, Any] = {"types": registered_types(), "modules": configured}
    missing = missing_modules()
    lacking = {
        beat.hostname: absent
        for beat in alive_workers()
        if (absent := [m for m in configured if m not in beat.info.get("handler_modules", ())])
    }
    if missing:
        result["missing"] = missing
    if lacking:
        result["workers_missing"] = lacking
    if missing or lacking:
        names = sorted(set(missing).union(*lacking.values()))
        result["error"] = f"configured job-type modules not loaded: {', '.join(names)}"
    return {"ok": not (missing or lacking), **result}


def _pools() -> dict[str, Any]:
    """External worker pools: a type no live pool serves fails the check (its jobs wait)."""
    overview = pools_overview()
    unserved = overview["unserved_types"]
    if unserved:
        names = ", ".join(sorted(unserved))
        return {"ok": False, **overview, "error": f"no live worker pool serves type(s): {names}"}
    return {"ok": True, **overview}


HEALTH_CHECKS: dict[str, Callable[[], dict[str, Any] | None]] = {
    "postgres": _postgres,
    "broker": _broker,
    "ledger": _ledger,
    "channel_layer": _channel_layer,
    "workers": _workers,
    "job_types": _job_types,
    "pools": _pools,
}


class HealthApi(StaffApi):
    @extend_schema(
        operation_id="admin_health", responses={200: OpenApiTypes.OBJECT, 503: OpenApiTypes.OBJECT}
    )
    def get(self, request: Request) -> Response:
        """Readiness of every dependency, each with its latency: 200 when all are up, 503
        naming the failing ones. Workers are known from their Redis heartbeats (no broadcast)."""
        checks = {name: _probe(check) for name, check in HEALTH_CHECKS.items()}
        failing = [name for name, c in checks.items() if not c["ok"]]
        body = {"status": "unavailable" if failing else "ok", "failing": failing, "checks": checks}
        return Response(body, status=503 if failing else 200)


class MetricsApi(StaffApi):
    @extend_schema(operation_id="admin_metrics", responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        """Platform figures (see ``admin_api.metrics``); a bounded number of queries."""
        return Response(metrics.snapshot_json(metrics.snapshot()))


def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: the same figures in Prometheus' text format, computed at scrape time
    (``admin_api.metrics.DraconicCollector``). Open unless ``METRICS_TOKEN`` is set; then it
    needs ``Authorization: Bearer <token>`` and answers 401 without it."""
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        valid = hmac.compare_digest(given.strip().encode(), token.encode())
        if scheme.lower() != "bearer" or not valid:
            response = HttpResponse(
                "bearer token required\n", status=401, content_type="text/plain"
            )
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return HttpResponse(generate_latest(metrics.registry()), content_type=CONTENT_TYPE_LATEST)


class DeadLetterListApi(StaffApi):
    pagination_class = Pagination  # read by drf-spectacular: GET is documented as a page

    @extend_schema(
        operation_id="admin_dlq_list",
        parameters=[DeadLetterFilterSerializer],
        responses={
            200: DeadLetterOutputSerializer(many=True),
            400: VALIDATION_ERROR,
            404: OpenApiResponse(ERROR, description="No such page."),
        },
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
        request=DeadLetterRetryInputSerializer,
        responses={
            200: inline_serializer(
                "Requeued",
                fields={
                    "job_id": serializers.UUIDField(),
                    "status": serializers.CharField(),
                    "revived": serializers.ListField(
                        child=serializers.UUIDField(),
                        help_text="Its descendants that its failure had cancelled, now pending.",
                    ),
                },
            ),
            400: VALIDATION_ERROR,
            404: OpenApiResponse(ERROR, description="The job is not in the dead-letter queue."),
        },
    )
    def post(self, request: Request, job_id: str) -> Response:
        """Re-drive one dead-lettered job and, unless ``"descendants": false``, the
        descendants its failure cancelled (they run after it completes)."""
        parsed = parse_uuid(job_id)
        data = DeadLetterRetryInputSerializer(data=request.data)
        if parsed is not None:
            data.is_valid(raise_exception=True)
        if parsed is None:
            raise NotFound(f"job {job_id!s:.64} is not in the dead-letter queue")
        with transaction.atomic():
            redrive = deadletter.dead_letter_redrive(
                job_ids=[parsed], by=request.user, descendants=data.validated_data["descendants"]
            )
            if redrive.requeued:
                _audit_redrive(request, f"job {parsed} (staff API)", redrive)
        if not redrive.requeued:
            raise NotFound(f"job {job_id!s:.64} is not in the dead-letter queue")
        revived = [str(i) for i in redrive.revived]
        return Response({"job_id": str(parsed), "status": "pending", "revived": revived})


def _audit_redrive(request: Request, target: str, redrive: deadletter.Redrive) -> None:
    """The staff API's re-drives are operator actions too: recorded like the console's."""
    audit.record(
        request.user,
        "redrive",
        target,
        job_ids=[*redrive.requeued, *redrive.revived],
        count=len(redrive.requeued),
        detail={"revived": len(redrive.revived), "via": "api"},
    )


class DeadLetterBulkRetryApi(StaffApi):
    @extend_schema(
        operation_id="admin_dlq_retry_bulk",
        request=DeadLetterBulkRetryInputSerializer,
        responses={
            200: OpenApiResponse(
                inline_serializer(
                    "BulkRequeued",
                    fields={
                        "requeued": serializers.IntegerField(
                            required=False, help_text="How many were re-driven."
                        ),
                        "would_requeue": serializers.IntegerField(
                            required=False,
                            help_text="With dry_run: how many would be; nothing changed.",
                        ),
                        "revived": serializers.IntegerField(
                            required=False,
                            help_text="Their descendants brought back with them.",
                        ),
                    },
                ),
                description=(
                    f"At most {BULK_REDRIVE_LIMIT} per call (newest letters first): "
                    "repeat until requeued is 0."
                ),
            ),
            400: VALIDATION_ERROR,
        },
    )
    def post(self, request: Request) -> Response:
        """Re-drive the open dead letters matching ``type`` and/or ``reason``, or all of them
        with ``"all": true``; ``"dry_run": true`` only counts them."""
        data = DeadLetterBulkRetryInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        matching = selectors.dead_letter_list(**data.filters())
        if data.validated_data["dry_run"]:
            return Response({"would_requeue": min(matching.count(), BULK_REDRIVE_LIMIT)})
        ids = list(matching.values_list("job_id", flat=True)[:BULK_REDRIVE_LIMIT])
        with transaction.atomic():
            redrive = deadletter.dead_letter_redrive(
                job_ids=ids, by=request.user, descendants=data.validated_data["descendants"]
            )
            if redrive.requeued:
                which = " ".join(f"{k}={v}" for k, v in data.filters().items()) or "all"
                target = f"{len(redrive.requeued)} dead letters ({which}; staff API)"
                _audit_redrive(request, target, redrive)
        return Response({"requeued": len(redrive.requeued), "revived": len(redrive.revived)})
