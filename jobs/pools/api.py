"""The worker API (``/workers/...``): what an external pool's workers call. Authenticated by
a worker token only (``auth``); each view validates, calls one service, answers JSON."""

from __future__ import annotations

from typing import Any, ClassVar, NoReturn

from django.conf import settings
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from jobs.pools import attempts, serializers, services
from jobs.pools.auth import WorkerPrincipal, WorkerTokenAuthentication
from jobs.pools.models import WorkerPool

REFUSED = "the worker API takes a worker token (Authorization: Worker <key>) only"


class IsWorker(BasePermission):
    message = REFUSED

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, WorkerPrincipal)


class WorkerApi(APIView):
    authentication_classes = [WorkerTokenAuthentication]
    permission_classes = [IsWorker]
    throttle_classes = []
    # Not in the public OpenAPI schema: the worker API is the SDK runtime's protocol with the
    # server (draconic_sdk.worker.api), not an API for clients.
    schema = None
    input_serializer: ClassVar[type[Serializer[Any]]]

    def permission_denied(
        self, request: Request, message: Any = None, code: Any = None
    ) -> NoReturn:
        # A user's token or session is not "not authenticated" here: it is the wrong kind.
        raise PermissionDenied(REFUSED)

    def pool(self, request: Request) -> WorkerPool:
        user = request.user
        assert isinstance(user, WorkerPrincipal)  # noqa: S101  (IsWorker let it in)
        return user.pool

    def data(self, request: Request) -> dict[str, Any]:
        serializer = self.input_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


def _own_pool(pool: WorkerPool, name: str) -> None:
    if name != pool.name:
        raise PermissionDenied(f"this token is the pool {pool.name!r}'s, not {name!r}'s")


class RegisterApi(WorkerApi):
    input_serializer = serializers.RegisterSerializer

    def post(self, request: Request) -> Response:
        data, pool = self.data(request), self.pool(request)
        _own_pool(pool, data["pool"])
        registration = services.pool_register(
            pool=pool, worker=data["worker"], concurrency=data["concurrency"], types=data["types"]
        )
        return Response(
            {
                "pool": registration.pool,
                "queues": registration.queues,
                "lease_seconds": settings.DRACONIC_LEASE_SECONDS,
                "heartbeat_seconds": settings.DRACONIC_POOL_LIVE_SECONDS / 4,
                "broker_transport_options": settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            }
        )


class HeartbeatApi(WorkerApi):
    input_serializer = serializers.HeartbeatSerializer

    def post(self, request: Request) -> Response:
        data, pool = self.data(request), self.pool(request)
        _own_pool(pool, data["pool"])
        services.pool_heartbeat(pool=pool, worker=data["worker"])
        return Response({"pool": pool.name})


class StartApi(WorkerApi):
    input_serializer = serializers.StartSerializer

    def post(self, request: Request) -> Response:
        return Response(attempts.attempt_start(pool=self.pool(request), **self.data(request)))


class RenewApi(WorkerApi):
    input_serializer = serializers.AttemptSerializer

    def post(self, request: Request) -> Response:
        return Response(attempts.attempt_renew(pool=self.pool(request), **self.data(request)))


class LogApi(WorkerApi):
    input_serializer = serializers.LogSerializer

    def post(self, request: Request) -> Response:
        attempts.attempt_log(pool=self.pool(request), **self.data(request))
        return Response({"logged": True})


class ProgressApi(WorkerApi):
    input_serializer = serializers.ProgressSerializer

    def post(self, request: Request) -> Response:
        attempts.attempt_progress(pool=self.pool(request), **self.data(request))
        return Response({"logged": True})


class ParentsApi(WorkerApi):
    input_serializer = serializers.AttemptSerializer

    def post(self, request: Request) -> Response:
        return Response(attempts.attempt_parents(pool=self.pool(request), **self.data(request)))


class CompleteApi(WorkerApi):
    input_serializer = serializers.CompleteSerializer

    def post(self, request: Request) -> Response:
        attempts.attempt_complete(pool=self.pool(request), **self.data(request))
        return Response({"status": "completed"})


class FailApi(WorkerApi):
    input_serializer = serializers.FailSerializer

    def post(self, request: Request) -> Response:
        status = attempts.attempt_fail(pool=self.pool(request), **self.data(request))
        return Response({"status": status})


class HandBackApi(WorkerApi):
    input_serializer = serializers.StartSerializer  # the attempt and the stopping worker

    def post(self, request: Request) -> Response:
        status = attempts.attempt_hand_back(pool=self.pool(request), **self.data(request))
        return Response({"status": status})
