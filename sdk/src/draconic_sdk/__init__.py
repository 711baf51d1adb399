"""The Python client of the Draconic job platform: ``Client``, ``AsyncClient``, ``Graph``,
the typed models and errors. It talks to the server over HTTP and WebSocket only."""

from __future__ import annotations

from draconic_sdk._version import __version__
from draconic_sdk.aio import AsyncClient
from draconic_sdk.client import Client
from draconic_sdk.errors import (
    AuthenticationError,
    Conflict,
    DraconicError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerUnavailable,
    Timeout,
    ValidationError,
)
from draconic_sdk.graph import Graph
from draconic_sdk.jobtypes import Defaults, JobType, RetryPolicy, job_type
from draconic_sdk.models import (
    BatchResult,
    BulkRequeued,
    DeadLetter,
    Event,
    Health,
    Job,
    JobTypeInfo,
    Limit,
    LogEntry,
    Requeued,
    ResourceRequirements,
    Schedule,
    ScheduleRun,
)
from draconic_sdk.pauses import Pause
from draconic_sdk.rule_calls import UNSET

__all__ = [
    "UNSET",
    "AsyncClient",
    "AuthenticationError",
    "BatchResult",
    "BulkRequeued",
    "Client",
    "Conflict",
    "DeadLetter",
    "Defaults",
    "DraconicError",
    "Event",
    "Graph",
    "Health",
    "Job",
    "JobType",
    "JobTypeInfo",
    "Limit",
    "LogEntry",
    "NotFound",
    "Pause",
    "PermissionDenied",
    "RateLimited",
    "Requeued",
    "ResourceRequirements",
    "RetryPolicy",
    "Schedule",
    "ScheduleRun",
    "ServerUnavailable",
    "Timeout",
    "ValidationError",
    "__version__",
    "job_type",
]
