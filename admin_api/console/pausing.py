"""Pausing and resuming a job type or a priority: the services (each audited in the
transaction of its change), and the staff REST endpoint ``/admin/pauses/``.

A pause is a ``jobs.Pause`` row; admission passes over its jobs while it exists. Resuming
deletes it and requests a dispatch once the delete has committed, so the held jobs are
admitted at once, not at the scheduler's next tick.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from admin_api import audit
from admin_api.access import StaffApiPermission
from jobs.api.serializers import StrictCharField, StrictChoiceField, StrictSerializer
from jobs.api.views import ERROR, VALIDATION_ERROR
from jobs.engine import wakeup
from jobs.models import Pause, Priority


class AlreadyPaused(Exception):
    pass


def pause_create(
    *, actor: Any, job_type: str | None = None, priority: int | None = None, reason: str = ""
) -> Pause:
    """Pause one job type or one priority (exactly one of them); AlreadyPaused if it is."""
    try:
        with transaction.atomic():
            pause = Pause.objects.create(
                job_type=job_type,
                priority=priority,
                reason=reason,
                created_by=actor if getattr(actor, "pk", None) else None,
            )
            action = "pause_type" if job_type is not None else "pause_priority"
            audit.record(actor, action, pause.target, count=1, detail={"reason": reason})
    except IntegrityError as exc:
        raise AlreadyPaused(
            f"{'type ' + job_type if job_type else 'that priority'} is already paused"
        ) from exc
    return pause


def pause_delete(*, actor: Any, pause_id: int) -> Pause | None:
    """Resume: delete the pause and request a dispatch after the commit; None if no such
    pause (already resumed)."""
    with transaction.atomic():
        pause = Pause.objects.select_for_update().filter(id=pause_id).first()
        if pause is None:
            return None
        target = pause.target
        pause.delete()
        action = "resume_type" if pause.job_type is not None else "resume_priority"
        audit.record(actor, action, target, count=1)
        transaction.on_commit(wakeup.request_dispatch)
    return pause


def pause_list() -> list[Pause]:
    return list(Pause.objects.select_related("created_by").order_by("id"))


# --- REST ---------------------------------------------------------------------------------


class PauseInputSerializer(StrictSerializer):
    """One job type or one priority to pause (exactly one), and why."""

    job_type = StrictCharField(required=False, max_length=255, help_text="A job type to pause.")
    priority = StrictChoiceField(
        required=False, choices=Priority.labels, help_text="A priority to pause."
    )
    reason = StrictCharField(required=False, allow_blank=True, max_length=200, default="")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("job_type" in attrs) == ("priority" in attrs):
            message = "give exactly one of job_type and priority"
            raise ValidationError({"job_type": [message], "priority": [message]})
        return attrs


class PauseOutputSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    priority = serializers.SerializerMethodField()
    created_by = serializers.SerializerMethodField()

    class Meta:
        model = Pause
        fields = ("id", "job_type", "priority", "reason", "created_by", "created_at")

    def get_priority(self, pause: Pause) -> str | None:
        return None if pause.priority is None else str(Priority(pause.priority).label)

    def get_created_by(self, pause: Pause) -> str | None:
        return None if pause.created_by is None else pause.created_by.get_username()


class PauseListApi(APIView):
    permission_classes = [StaffApiPermission]

    @extend_schema(
        operation_id="admin_pauses_list", responses={200: PauseOutputSerializer(many=True)}
    )
    def get(self, request: Request) -> Response:
        """The paused job types and priorities: admission passes over their jobs."""
        return Response(PauseOutputSerializer(pause_list(), many=True).data)

    @extend_schema(
        operation_id="admin_pauses_create",
        request=PauseInputSerializer,
        responses={201: PauseOutputSerializer, 400: VALIDATION_ERROR, 409: ERROR},
    )
    def post(self, request: Request) -> Response:
        """Pause one job type (``job_type``) or one priority (``priority``)."""
        data = PauseInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        priority = values.get("priority")
        try:
            pause = pause_create(
                actor=request.user,
                job_type=values.get("job_type"),
                priority=None if priority is None else int(Priority.by_name(priority)),
                reason=values["reason"],
            )
        except AlreadyPaused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(PauseOutputSerializer(pause).data, status=status.HTTP_201_CREATED)


class PauseDetailApi(APIView):
    permission_classes = [StaffApiPermission]

    @extend_schema(
        operation_id="admin_pauses_delete",
        responses={204: None, 404: OpenApiResponse(ERROR, description="No such pause.")},
    )
    def delete(self, request: Request, pause_id: str) -> Response:
        """Resume: the held jobs are dispatched at once."""
        if not (pause_id.isascii() and pause_id.isdigit() and len(pause_id) < 18):
            raise NotFound(f"no pause {pause_id!s:.64}")
        if pause_delete(actor=request.user, pause_id=int(pause_id)) is None:
            raise NotFound(f"no pause {pause_id}")
        return Response(status=status.HTTP_204_NO_CONTENT)
