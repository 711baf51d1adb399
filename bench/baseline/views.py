"""A minimal DRF create view: validate the body's shape (type, priority, payload size,
resources), one ``objects.create``, answer 201 with the row. The batch view validates a list
the same way and stores it with two ``bulk_create`` calls (rows, then edges)."""

from __future__ import annotations

import json
import uuid
from typing import Any, cast

from django.conf import settings
from django.db import transaction
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.baseline.models import BaselineEdge, BaselineJob
from jobs.types import registered_types

PRIORITIES = ("critical", "high", "normal", "low")


class ResourcesSerializer(serializers.Serializer):  # type: ignore[type-arg]
    cpu_units = serializers.IntegerField(min_value=1, default=1)
    memory_mb = serializers.IntegerField(min_value=1, default=128)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if (
            attrs["cpu_units"] > settings.MAX_CPU_UNITS
            or attrs["memory_mb"] > settings.MAX_MEMORY_MB
        ):
            raise serializers.ValidationError("exceeds the cluster's capacity")
        return attrs


class BaselineInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    type = serializers.CharField(max_length=64)
    priority = serializers.ChoiceField(choices=PRIORITIES, default="normal")
    payload = serializers.JSONField(default=dict)
    resource_requirements = ResourcesSerializer(required=False)
    max_attempts = serializers.IntegerField(min_value=1, max_value=20, default=3)
    timeout_seconds = serializers.IntegerField(min_value=1, max_value=86400, default=3600)

    def validate_type(self, value: str) -> str:
        if value not in registered_types():
            raise serializers.ValidationError("unknown job type")
        return value

    def validate_payload(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("must be a JSON object")
        if len(json.dumps(value).encode()) > settings.DRACONIC_MAX_PAYLOAD_BYTES:
            raise serializers.ValidationError("too large")
        return value

    def row(self, data: dict[str, Any], owner: Any) -> BaselineJob:
        resources = data.get("resource_requirements") or {"cpu_units": 1, "memory_mb": 128}
        return BaselineJob(
            owner=owner,
            type=data["type"],
            priority=data["priority"],
            payload=data["payload"],
            cpu_units=resources["cpu_units"],
            memory_mb=resources["memory_mb"],
            max_attempts=data["max_attempts"],
            timeout_seconds=data["timeout_seconds"],
        )


class BaselineBatchItemSerializer(BaselineInputSerializer):
    key = serializers.CharField(max_length=64, required=False)
    depends_on = serializers.ListField(child=serializers.CharField(max_length=64), default=list)


class BaselineBatchSerializer(serializers.Serializer):  # type: ignore[type-arg]
    # What BaselineBatchItemSerializer(many=True, allow_empty=False, max_length=1000) builds,
    # spelled out: the DRF stubs' serializer __init__ does not take the list's max_length.
    jobs: serializers.ListSerializer[Any] = serializers.ListSerializer(
        child=BaselineBatchItemSerializer(), allow_empty=False, max_length=1000
    )


class BaselineOutputSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = BaselineJob
        fields = "__all__"


class BaselineCreateApi(APIView):
    def post(self, request: Request) -> Response:
        data = BaselineInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        row = data.row(data.validated_data, request.user)
        row.save(force_insert=True)
        return Response(BaselineOutputSerializer(row).data, status=status.HTTP_201_CREATED)


class BaselineBatchApi(APIView):
    def post(self, request: Request) -> Response:
        data = BaselineBatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        items = data.validated_data["jobs"]
        jobs_field = cast("serializers.ListSerializer[Any]", data.fields["jobs"])
        child = cast(BaselineBatchItemSerializer, jobs_field.child)
        rows = [child.row(item, request.user) for item in items]
        for row in rows:
            row.id = uuid.uuid4()
        ids = {
            item["key"]: row.id for item, row in zip(items, rows, strict=True) if item.get("key")
        }
        edges = [
            BaselineEdge(job_id=row.id, depends_on_id=ids[ref])
            for item, row in zip(items, rows, strict=True)
            for ref in item["depends_on"]
            if ref in ids
        ]
        with transaction.atomic():
            BaselineJob.objects.bulk_create(rows)
            BaselineEdge.objects.bulk_create(edges)
        return Response(
            {"jobs": BaselineOutputSerializer(rows, many=True).data}, status=status.HTTP_201_CREATED
        )
