"""``GET /job-types/``: every job type a client may submit, and the OpenAPI schema's
documentation of each type's payload.

A type is listed with its payload JSON Schema (``{"type": "object"}`` for a ``Handler`` that
declares none), its defaults, its retry policy (None: the deployment's), the pool that serves
it (``built-in``: this deployment's Celery workers) and ``served``: whether a live worker
serves it now (for built-in types: a worker whose heartbeat lists it, ``workers.liveness``;
for a remote type: what its pool's registration says).

The OpenAPI schema cannot list what registers at run time as one static body, so
``document_job_types`` (a drf-spectacular postprocessing hook) adds one component per type,
``JobTypePayload.<name>``, with its payload schema, and names them from the description of
``payload`` in the job bodies (and in ``x-payload-schemas``: type -> component).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import redis
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs.api.serializers import StrictSerializer
from jobs.types.handler import BUILT_IN
from jobs.types.registry import describe_types

logger = logging.getLogger("draconic.api")

COMPONENT_PREFIX = "JobTypePayload."
#: The request bodies whose ``payload`` the per-type components document.
JOB_BODIES = ("JobInputRequest", "BatchJobInputRequest", "JobTemplateRequest")


class JobTypeOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField()
    description = serializers.CharField()
    payload_schema = serializers.DictField(help_text="The JSON Schema a payload must match.")
    defaults = serializers.DictField(
        help_text="priority, cpu_units, memory_mb, max_attempts, timeout_seconds: what a job "
        "of this type gets when its body leaves them out (missing: the server's)."
    )
    retry = serializers.DictField(
        allow_null=True, help_text="The type's retry policy; null: the deployment's."
    )
    pool = serializers.CharField(help_text='"built-in", or the external pool that serves it.')
    served = serializers.BooleanField(help_text="A live worker serves this type now.")


class JobTypesQuerySerializer(StrictSerializer):
    also_allowed = ("format",)


class JobTypesApi(APIView):
    @extend_schema(
        operation_id="job_types_list",
        responses={
            200: JobTypeOutputSerializer(many=True),
            400: OpenApiResponse(description="An unknown query parameter."),
            401: OpenApiResponse(description="No valid token or session."),
        },
    )
    def get(self, request: Request) -> Response:
        JobTypesQuerySerializer(data=request.query_params).is_valid(raise_exception=True)
        served_here = _built_in_served()
        listed = []
        for described in describe_types():
            if described["pool"] == BUILT_IN:
                described = {**described, "served": described["name"] in served_here}
            listed.append(described)
        return Response(JobTypeOutputSerializer(listed, many=True).data)


def _built_in_served() -> set[str]:
    """The types some live built-in worker runs (none known while Redis is down)."""
    from workers.liveness import alive_workers  # the worker app's heartbeat index

    try:
        beats = alive_workers()
    except redis.RedisError:
        return set()
    return {name for beat in beats for name in beat.info.get("job_types", [])}


def document_job_types(result: dict[str, Any], **_: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: a component per job type's payload, named from
    the job bodies' ``payload``."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    refs = {}
    try:
        described_types = describe_types()
    except Exception as exc:
        # The pools' types are rows. Without a readable database (`manage.py spectacular` at
        # build time, a test collecting the schema) the documentation still serves, listing
        # the deployment's own types.
        logger.warning("the OpenAPI schema lists no worker pool's types: %s", exc)
        described_types = describe_types(local_only=True)
    for described in described_types:
        component = COMPONENT_PREFIX + _component_name(described["name"])
        schemas[component] = {
            **openapi30(described["payload_schema"]),
            "description": f"The payload of a {described['name']!r} job.",
        }
        refs[described["name"]] = f"#/components/schemas/{component}"
    listing = "; ".join(f"{name}: {ref}" for name, ref in refs.items())
    for body in JOB_BODIES:
        payload = schemas.get(body, {}).get("properties", {}).get("payload")
        if payload is not None:
            payload["description"] = (
                f"{payload.get('description', '')} Its schema is the type's "
                f"(GET /job-types/ lists them): {listing}."
            ).strip()
            payload["x-payload-schemas"] = refs
    return result


def _component_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def openapi30(schema: Any) -> Any:
    """A JSON Schema (2020-12, as ``draconic_sdk`` makes them) in OpenAPI 3.0's dialect: no
    ``"type": "null"`` (``nullable`` instead), no ``const``, no lists of types."""
    if isinstance(schema, list):
        return [openapi30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {k: openapi30(v) for k, v in schema.items() if k not in ("$schema", "$id")}
    if "const" in converted:
        converted["enum"] = [converted.pop("const")]
    kind = converted.get("type")
    if isinstance(kind, list):
        converted.pop("type")
        others = [k for k in kind if k != "null"]
        converted["anyOf"] = [{"type": k} for k in others]
        if len(others) < len(kind):
            converted["nullable"] = True
    elif kind == "null":
        converted.pop("type")
        converted.update(nullable=True, enum=[None])
    for key in ("anyOf", "oneOf"):
        options = converted.get(key)
        if isinstance(options, list) and any(
            o == {"nullable": True, "enum": [None]} for o in options
        ):
            converted[key] = [o for o in options if o != {"nullable": True, "enum": [None]}]
            converted["nullable"] = True
    return converted
