"""Worker tokens: who may call the worker API, and that they may call nothing else.

A worker sends ``Authorization: Worker <key>``; every key starts with ``dwk_``
(``services.KEY_PREFIX``), so a worker key is recognised whatever scheme it is sent with.
``WorkerTokenAuthentication`` is the worker API's only authentication: a user's token or
session is refused there (403). ``WorkerTokenScopeMiddleware`` refuses a worker key on every
other path (403), before any view or authentication class sees it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from jobs.pools.models import WorkerPool
from jobs.pools.services import KEY_PREFIX, pool_for_key

WORKER_API_PREFIX = "/workers/"


class WorkerPrincipal:
    """The caller of the worker API: one pool's worker. Not a user."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    is_active = True
    pk = None
    id = None

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool

    def __str__(self) -> str:
        return f"worker of pool {self.pool.name}"


def worker_key(header: bytes | str) -> str | None:
    """The worker key in an Authorization header (any scheme), or None."""
    raw = header.decode("latin-1") if isinstance(header, bytes) else header
    parts = raw.split()
    if len(parts) == 2 and parts[1].startswith(KEY_PREFIX):
        return parts[1]
    return None


class WorkerTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[WorkerPrincipal, None] | None:
        key = worker_key(get_authorization_header(request))
        if key is None:
            return None
        pool = pool_for_key(key)
        if pool is None:
            raise AuthenticationFailed("invalid or revoked worker token")
        return WorkerPrincipal(pool), None

    def authenticate_header(self, request: Request) -> str:
        return "Worker"


class WorkerTokenScopeMiddleware:
    """403 for a worker key on any path outside the worker API."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header and not request.path.startswith(WORKER_API_PREFIX) and worker_key(header):
            return JsonResponse(
                {"detail": "a worker token may call only the worker API (/workers/...)"},
                status=403,
            )
        return self.get_response(request)
