"""The ``/schedules/`` REST API, owner-scoped like ``/jobs/``: a user sees and changes only
their own schedules (anyone else's is a 404). Views validate, call one service, answer."""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.models import User
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs.api.output import JobOutputSerializer
from jobs.api.serializers import NoBodySerializer, QueryFilterSerializer
from jobs.api.views import CONFLICT, UNAUTHORIZED, VALIDATION_ERROR, Pagination
from jobs.ids import parse_uuid
from jobs.schedules import services
from jobs.schedules.models import Schedule
from jobs.schedules.output import ScheduleDetailOutputSerializer, ScheduleOutputSerializer
from jobs.schedules.serializers import ScheduleInputSerializer

NOT_FOUND = OpenApiResponse(description="No such schedule among yours (or not a UUID).")


def _get_schedule_or_404(request: Request, schedule_id: Any) -> Schedule:
    parsed = parse_uuid(schedule_id)
    found = (
        Schedule.objects.filter(id=parsed, owner=cast(User, request.user)).first()
        if parsed is not None
        else None
    )
    if found is None:
        raise NotFound(f"no schedule {schedule_id!s:.64} among yours")
    return found


class ScheduleListCreateApi(APIView):
    pagination_class = Pagination

    @extend_schema(
        operation_id="schedules_list",
        responses={
            200: ScheduleOutputSerializer(many=True),
            400: VALIDATION_ERROR,
            401: UNAUTHORIZED,
            404: OpenApiResponse(description="No such page."),
        },
    )
    def get(self, request: Request) -> Response:
        QueryFilterSerializer(data=request.query_params).is_valid(raise_exception=True)
        schedules = Schedule.objects.filter(owner=cast(User, request.user)).order_by(
            "-created_at", "id"
        )
        paginator = Pagination()
        page = paginator.paginate_queryset(schedules, request, view=self)
        return paginator.get_paginated_response(ScheduleOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="schedules_create",
        request=ScheduleInputSerializer,
        responses={201: ScheduleDetailOutputSerializer, 400: VALIDATION_ERROR, 401: UNAUTHORIZED},
    )
    def post(self, request: Request) -> Response:
        data = ScheduleInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        schedule = services.schedule_create(
            owner=cast(User, request.user), data=dict(data.validated_data)
        )
        return Response(ScheduleDetailOutputSerializer(schedule).data, status=201)


class ScheduleDetailApi(APIView):
    @extend_schema(
        operation_id="schedules_retrieve",
        responses={200: ScheduleDetailOutputSerializer, 404: NOT_FOUND, 401: UNAUTHORIZED},
    )
    def get(self, request: Request, schedule_id: str) -> Response:
        schedule = _get_schedule_or_404(request, schedule_id)
        return Response(ScheduleDetailOutputSerializer(schedule).data)

    @extend_schema(
        operation_id="schedules_partial_update",
        request=ScheduleInputSerializer(partial=True),
        responses={
            200: ScheduleDetailOutputSerializer,
            400: VALIDATION_ERROR,
            404: NOT_FOUND,
            401: UNAUTHORIZED,
        },
    )
    def patch(self, request: Request, schedule_id: str) -> Response:
        schedule = _get_schedule_or_404(request, schedule_id)
        if not isinstance(request.data, dict):
            raise ValidationError({"detail": ["expected a JSON object of the fields to change"]})
        changes = dict(request.data)
        # Giving one of cron and interval_seconds replaces the other.
        for given, other in (("cron", "interval_seconds"), ("interval_seconds", "cron")):
            if changes.get(given) is not None and other not in changes:
                changes[other] = None
        data = ScheduleInputSerializer(data={**_as_input(schedule), **changes})
        data.is_valid(raise_exception=True)
        changed = {name: data.validated_data[name] for name in changes}
        schedule = services.schedule_update(schedule=schedule, data=changed)
        return Response(ScheduleDetailOutputSerializer(schedule).data)

    @extend_schema(
        operation_id="schedules_destroy",
        responses={204: None, 404: NOT_FOUND, 401: UNAUTHORIZED},
    )
    def delete(self, request: Request, schedule_id: str) -> Response:
        services.schedule_delete(schedule=_get_schedule_or_404(request, schedule_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _as_input(schedule: Schedule) -> dict[str, Any]:
    """A stored schedule as the input that would create it (a PATCH is validated whole)."""
    return {
        "name": schedule.name,
        "cron": schedule.cron or None,
        "interval_seconds": schedule.interval_seconds,
        "timezone": schedule.timezone,
        "job": schedule.job,
        "overlap": schedule.overlap,
        "catchup": schedule.catchup,
        "catchup_limit": schedule.catchup_limit,
        "start_at": schedule.start_at,
        "end_at": schedule.end_at,
    }


class ScheduleTriggerApi(APIView):
    @extend_schema(
        operation_id="schedules_trigger",
        request=None,
        responses={
            201: JobOutputSerializer,
            400: VALIDATION_ERROR,
            404: NOT_FOUND,
            409: CONFLICT,
            401: UNAUTHORIZED,
        },
    )
    def post(self, request: Request, schedule_id: str) -> Response:
        schedule = _get_schedule_or_404(request, schedule_id)
        NoBodySerializer(data=request.data).is_valid(raise_exception=True)
        job = services.schedule_trigger(schedule=schedule)
        return Response(
            JobOutputSerializer(job, context={"depends_on": {job.id: []}}).data, status=201
        )


class SchedulePauseApi(APIView):
    @extend_schema(
        operation_id="schedules_pause",
        request=None,
        responses={
            200: ScheduleDetailOutputSerializer,
            400: VALIDATION_ERROR,
            404: NOT_FOUND,
            401: UNAUTHORIZED,
        },
    )
    def post(self, request: Request, schedule_id: str) -> Response:
        schedule = _get_schedule_or_404(request, schedule_id)
        NoBodySerializer(data=request.data).is_valid(raise_exception=True)
        schedule = services.schedule_pause(schedule=schedule)
        return Response(ScheduleDetailOutputSerializer(schedule).data)


class ScheduleResumeApi(APIView):
    @extend_schema(
        operation_id="schedules_resume",
        request=None,
        responses={
            200: ScheduleDetailOutputSerializer,
            400: VALIDATION_ERROR,
            404: NOT_FOUND,
            401: UNAUTHORIZED,
        },
    )
    def post(self, request: Request, schedule_id: str) -> Response:
        schedule = _get_schedule_or_404(request, schedule_id)
        NoBodySerializer(data=request.data).is_valid(raise_exception=True)
        schedule = services.schedule_resume(schedule=schedule)
        return Response(ScheduleDetailOutputSerializer(schedule).data)
