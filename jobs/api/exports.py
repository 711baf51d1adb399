"""``GET /jobs/{id}/export``: a completed ``data_export`` job's file, streamed to its owner
from the export storage (``draconic.storage``), never from a path the client names."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from draconic.storage import export_storage
from jobs.api.views import NOT_FOUND, UNAUTHORIZED, _get_job_or_404
from jobs.models import Job, JobStatus

CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


class FileContentNegotiation(BaseContentNegotiation):
    """The file is not rendered, so the client's ``Accept`` (``text/csv``, say) chooses
    nothing: errors are always rendered as JSON, by the first renderer."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        first = next(iter(renderers))
        return first, str(first.media_type)


def export_name(job: Job) -> tuple[str, str, str]:
    """The job's file as ``(storage name, download filename, format)``; NotFound when the job
    is not a completed ``data_export`` job whose result names a file of its owner's."""
    if job.type != "data_export":
        raise NotFound(f"job {job.id} is a {job.type} job; only data_export jobs have a file")
    if job.status != JobStatus.COMPLETED:
        raise NotFound(f"job {job.id} is {job.status}; its file exists once it has completed")
    result = job.result if isinstance(job.result, dict) else {}
    filename, fmt = result.get("filename"), result.get("format")
    # Results written before storage_name existed: the handler's layout, <owner>/<filename>.
    name = result.get("storage_name") or f"{job.owner_id}/{filename}"
    parts = PurePosixPath(str(name)).parts
    if (
        not isinstance(filename, str)
        or fmt not in CONTENT_TYPES
        or len(parts) != 2
        or parts[0] != str(job.owner_id)
        or parts[1].startswith(".")
    ):
        raise NotFound(f"job {job.id} has no export file")
    return str(name), filename, str(fmt)


class JobExportApi(APIView):
    content_negotiation_class = FileContentNegotiation

    @extend_schema(
        operation_id="jobs_export_download",
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The export file, as an attachment."
            ),
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The export file, as an attachment."
            ),
            404: OpenApiResponse(
                NOT_FOUND.response,
                description=(
                    "No such job among yours, not a completed data_export job, or its file is gone."
                ),
            ),
            401: UNAUTHORIZED,
        },
    )
    def get(self, request: Request, job_id: str) -> FileResponse:
        """Stream a completed ``data_export`` job's file (``Content-Disposition: attachment``
        with its filename). A later export of the same owner with the same ``filename``
        replaces the file, so this serves the newest file of that name."""
        job = _get_job_or_404(request, job_id)
        name, filename, fmt = export_name(job)
        try:
            handle = export_storage().open(name, "rb")
        except FileNotFoundError:
            raise NotFound(f"the file of job {job.id} is no longer in the export storage") from None
        return FileResponse(
            handle, as_attachment=True, filename=filename, content_type=CONTENT_TYPES[fmt]
        )
