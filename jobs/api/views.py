"""The jobs REST API. Views validate with an input serializer, call one service or selector,
and answer with an output serializer."""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.models import User
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs.api import selectors, submit
from jobs.api.output import (
    ExecutionLogOutputSerializer,
    JobDetailOutputSerializer,
    JobOutputSerializer,
)
from jobs.api.plain_batch import plain_batch_specs
from jobs.api.serializers import (
    BatchInputSerializer,
    DependenciesInputSerializer,
    JobInputSerializer,
    NoBodySerializer,
    QueryFilterSerializer,
    StrictChoiceField,
)
from jobs.engine.cancel import job_cancel
from jobs.models import Job, JobStatus, Priority

ERROR = inline_serializer(
    "Error",
    fields={"detail": serializers.CharField(help_text="What went wrong and what to do next.")},
)
VALIDATION_ERROR = OpenApiResponse(
    response=OpenApiTypes.OBJECT,
    description="Each bad field, mapped to a list of messages. Nothing was stored.",
)
NOT_FOUND = OpenApiResponse(ERROR, description="No such job among yours (or not a UUID).")
CONFLICT = OpenApiResponse(ERROR, description="The job's state does not allow this.")
UNAUTHORIZED = OpenApiResponse(ERROR, description="No valid token or session.")
IDEMPOTENCY_CONFLICT = OpenApiResponse(
    inline_serializer(
        "IdempotencyConflict",
        fields={
            "idempotency_key": serializers.ListField(child=serializers.CharField()),
            "job_id": serializers.UUIDField(help_text="The job first stored under this key."),
        },
    ),
    description=(
        "The idempotency_key was already used for a different request (the message names the"
        " differing fields); nothing was stored. Keys last as long as their job."
    ),
)


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    last_page_strings = ()  # ``page`` is an integer, as documented; ``page=last`` is a 404

    def get_page_size(self, request: Request) -> int:
        """The requested page size (capped at ``max_page_size``); 400 when ``page_size`` is
        given but not a positive integer, instead of DRF's silent fallback to the default."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (
            raw.isascii() and raw.isdigit() and len(raw) <= 6 and int(raw) >= 1
        ):
            raise ValidationError({self.page_size_query_param: ["must be a positive integer"]})
        return int(super().get_page_size(request) or self.page_size)

    def get_page_number(self, request: Request, paginator: Any) -> str | int:
        """The requested page; 400 when ``page`` is given but empty, where DRF would answer
        the first page (a value the schema's integer does not allow must not succeed)."""
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and not raw.strip():
            raise ValidationError({self.page_query_param: ["must be a positive integer"]})
        return super().get_page_number(request, paginator)


def _user(request: Request) -> User:
    """The request's user: every view here requires authentication (IsAuthenticated), so it
    is a user, never anonymous."""
    return cast(User, request.user)


def _get_job_or_404(request: Request, job_id: Any) -> Job:
    job = selectors.job_get(user=_user(request), job_id=job_id)
    if job is None:
        raise NotFound(f"no job {job_id!s:.64} among yours")
    return job


class JobFilterSerializer(QueryFilterSerializer):
    status = StrictChoiceField(choices=JobStatus.values, required=False, allow_blank=True)
    priority = StrictChoiceField(choices=list(Priority.labels), required=False, allow_blank=True)
    type = serializers.CharField(max_length=255, required=False, allow_blank=True)
    scheduled = StrictChoiceField(
        choices=["true", "false"],
        required=False,
        allow_blank=True,
        help_text=(
            "true: only jobs waiting for their time (a delayed job before its run_at, a retry"
            " in its backoff); false: all the others."
        ),
    )


class JobListCreateApi(APIView):
    pagination_class = Pagination  # read by drf-spectacular: GET is documented as a page

    @extend_schema(
        operation_id="jobs_list",
        parameters=[JobFilterSerializer],
        responses={
            200: JobOutputSerializer(many=True),
            400: VALIDATION_ERROR,
            401: UNAUTHORIZED,
            404: OpenApiResponse(ERROR, description="No such page."),
        },
    )
    def get(self, request: Request) -> Response:
        filters = JobFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        jobs: QuerySet[Job] = selectors.job_list(user=_user(request), **filters.validated_data)
        paginator = Pagination()
        page = paginator.paginate_queryset(jobs, request, view=self)
        return paginator.get_paginated_response(JobOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="jobs_create",
        request=JobInputSerializer,
        responses={
            201: JobOutputSerializer,
            200: OpenApiResponse(
                JobOutputSerializer,
                description="Repeated idempotency_key with the same request: the first job.",
            ),
            400: VALIDATION_ERROR,
            401: UNAUTHORIZED,
            409: IDEMPOTENCY_CONFLICT,
        },
    )
    def post(self, request: Request) -> Response:
        data = JobInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        spec = data.to_spec()
        job, created = submit.job_submit(owner=_user(request), spec=spec)
        parents = {job.id: spec.depends_on} if created else {}
        return Response(
            JobOutputSerializer(job, context={"depends_on": parents}).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class JobBatchApi(APIView):
    @extend_schema(
        operation_id="jobs_batch_create",
        request=BatchInputSerializer,
        responses={
            201: inline_serializer(
                "BatchCreated",
                fields={
                    "batch_id": serializers.UUIDField(),
                    "jobs": JobOutputSerializer(many=True),
                    "keys": serializers.DictField(child=serializers.UUIDField()),
                },
            ),
            400: VALIDATION_ERROR,
            401: UNAUTHORIZED,
        },
    )
    def post(self, request: Request) -> Response:
        specs = plain_batch_specs(request.data)
        if specs is None:  # not the plain shape: the serializer decides, and names the errors
            data = BatchInputSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            specs = data.to_specs()
        jobs = submit.job_submit_batch(owner=_user(request), specs=specs)
        keys = {s.key: j.id for s, j in zip(specs, jobs, strict=True) if s.key}
        parents = dict(zip((j.id for j in jobs), submit.batch_parents(specs, keys), strict=True))
        return Response(
            {
                "batch_id": str(jobs[0].batch_id),
                "keys": {key: str(job_id) for key, job_id in keys.items()},
                "jobs": JobOutputSerializer(jobs, many=True, context={"depends_on": parents}).data,
            },
            status=status.HTTP_201_CREATED,
        )


class JobDetailApi(APIView):
    @extend_schema(
        operation_id="jobs_retrieve",
        responses={200: JobDetailOutputSerializer, 404: NOT_FOUND, 401: UNAUTHORIZED},
    )
    def get(self, request: Request, job_id: str) -> Response:
        return Response(JobDetailOutputSerializer(_get_job_or_404(request, job_id)).data)


class JobCancelApi(APIView):
    @extend_schema(
        operation_id="jobs_cancel",
        request=None,
        responses={
            200: OpenApiResponse(
                JobOutputSerializer,
                description="Cancelled (or, if it was running, asked to stop: see cancel_requested).",
            ),
            400: VALIDATION_ERROR,
            404: NOT_FOUND,
            409: CONFLICT,
            401: UNAUTHORIZED,
        },
    )
    def patch(self, request: Request, job_id: str) -> Response:
        job = _get_job_or_404(request, job_id)
        NoBodySerializer(data=request.data).is_valid(raise_exception=True)
        job = job_cancel(job=job)
        job = selectors.job_get(user=_user(request), job_id=job.id) or job
        return Response(JobOutputSerializer(job).data)


class JobLogsApi(APIView):
    pagination_class = Pagination  # read by drf-spectacular: GET is documented as a page

    @extend_schema(
        operation_id="jobs_logs",
        parameters=[
            OpenApiParameter(
                "since",
                int,
                description="A log id (or a WebSocket event's cursor): the lines a reader who "
                "had it may lack. Those after it, and those written by transactions still open "
                "when it was written, which commit later with lower ids; so a line can come "
                "again (drop the ids you have). Resume from the highest id you have seen.",
            )
        ],
        responses={
            200: ExecutionLogOutputSerializer(many=True),
            400: VALIDATION_ERROR,
            404: NOT_FOUND,
            401: UNAUTHORIZED,
        },
    )
    def get(self, request: Request, job_id: str) -> Response:
        job = _get_job_or_404(request, job_id)
        since_raw = request.query_params.get("since")
        since = None
        if since_raw is not None:
            # isascii: str.isdigit() is also true for "²", which int() refuses (a 500).
            if not (since_raw.isascii() and since_raw.isdigit()) or len(since_raw) > 18:
                return Response(
                    {"since": ["must be a log id (a non-negative integer)"]}, status=400
                )
            since = int(since_raw)
        paginator = Pagination()
        page = paginator.paginate_queryset(
            selectors.job_logs(job=job, since=since), request, view=self
        )
        return paginator.get_paginated_response(ExecutionLogOutputSerializer(page, many=True).data)


class JobDependenciesApi(APIView):
    @extend_schema(
        operation_id="jobs_dependencies_add",
        request=DependenciesInputSerializer,
        responses={
            200: JobOutputSerializer,
            400: VALIDATION_ERROR,
            404: NOT_FOUND,
            409: CONFLICT,
            401: UNAUTHORIZED,
        },
    )
    def post(self, request: Request, job_id: str) -> Response:
        job = _get_job_or_404(request, job_id)
        data = DependenciesInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = submit.job_add_dependencies(job=job, parent_ids=data.validated_data["depends_on"])
        job = selectors.job_get(user=_user(request), job_id=job.id) or job
        return Response(JobOutputSerializer(job).data)
