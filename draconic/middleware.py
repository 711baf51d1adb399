"""HTTP middleware that guards the process against hostile input before any view runs."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse


def _too_large(limit: int) -> JsonResponse:
    return JsonResponse(
        {"detail": f"The request body is larger than {limit} bytes; send less (split a batch)."},
        status=413,
    )


class RequestSizeLimitMiddleware:
    """Answer 413 with a JSON ``{"detail": ...}`` when a request body is over
    ``DRACONIC_MAX_REQUEST_BYTES``.

    A declared ``Content-Length`` over the limit is refused without reading a byte. A body
    without one (chunked, or an understated length under ASGI) is read through
    ``request.body``, which reads at most ``DATA_UPLOAD_MAX_MEMORY_SIZE + 1`` bytes (settings
    keep the two limits equal) and raises ``RequestDataTooBig`` past it. After this
    middleware, ``request.body`` is cached, so views and DRF parsers read it from memory.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit: int = settings.DRACONIC_MAX_REQUEST_BYTES
        declared = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(declared)
        except ValueError:
            return JsonResponse({"detail": "Content-Length must be an integer."}, status=400)
        if length > limit:
            return _too_large(limit)
        try:
            request.body  # noqa: B018 - reads (boundedly) and caches the body
        except RequestDataTooBig:
            return _too_large(limit)
        return self.get_response(request)
