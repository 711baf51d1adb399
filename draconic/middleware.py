"""HTTP middleware: guards the process against hostile input before any view runs, and turns
an outage of Redis under a plain Django view into a 503."""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
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


class RedisUnavailableMiddleware:
    """Answer 503 with ``Retry-After`` when a plain Django view (the admin, the dashboard)
    raises a Redis error: a dependency is down, not the code broken. The API's views get
    the same answer from ``jobs.api.errors.exception_handler``, in JSON."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, redis.RedisError):
            return None
        from jobs.api.errors import REDIS_UNAVAILABLE, RETRY_AFTER_SECONDS

        logging.getLogger("draconic.api").error("redis unavailable: %s", exception)
        response = JsonResponse({"detail": REDIS_UNAVAILABLE}, status=503)
        response["Retry-After"] = RETRY_AFTER_SECONDS
        return response
