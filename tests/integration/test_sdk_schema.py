"""The client follows the OpenAPI schema: every operation of ``/api/schema/`` has a method of
``Client`` and ``AsyncClient``, every field of every answer a field of a model (or a name in
``RENAMED`` / ``LEFT_OUT``, with the reason), and every field a request takes a parameter.
An endpoint or a field added to the server without the client fails here."""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from draconic_sdk import (
    AsyncClient,
    BatchResult,
    BulkRequeued,
    Client,
    DeadLetter,
    Graph,
    Job,
    JobTypeInfo,
    Limit,
    LogEntry,
    Pause,
    Requeued,
    ResourceRequirements,
    Schedule,
    ScheduleRun,
)
from draconic_sdk.calls import Page

#: operationId -> the client's method (an attribute path on Client and AsyncClient).
OPERATIONS = {
    "jobs_create": "submit",
    "jobs_batch_create": "submit_graph",
    "jobs_list": "list",
    "jobs_retrieve": "get",
    "jobs_cancel": "cancel",
    "jobs_logs": "logs",
    "jobs_dependencies_add": "dependencies.add",
    "jobs_export_download": "export",
    "admin_health": "health",
    "admin_metrics": "metrics",
    "job_types_list": "job_types",
    "admin_dlq_list": "dlq.list",
    "admin_dlq_retry": "dlq.retry",
    "admin_dlq_retry_bulk": "dlq.retry_all",
    "schedules_create": "schedules.create",
    "schedules_list": "schedules.list",
    "schedules_retrieve": "schedules.get",
    "schedules_partial_update": "schedules.update",
    "schedules_destroy": "schedules.delete",
    "schedules_trigger": "schedules.trigger",
    "schedules_pause": "schedules.pause",
    "schedules_resume": "schedules.resume",
    "admin_limits_list": "limits.list",
    "admin_limits_create": "limits.create",
    "admin_limits_get": "limits.get",
    "admin_limits_update": "limits.update",
    "admin_limits_delete": "limits.delete",
    "admin_pauses_list": "pauses.list",
    "admin_pauses_create": "pauses.create",
    "admin_pauses_delete": "pauses.delete",
}
#: Response schemas -> the model that reads them ("Paginated" is every page of a list).
MODELS: dict[str, type] = {
    "JobOutput": Job,
    "JobDetailOutput": Job,  # with waiting_on
    "ResourceRequirementsOutput": ResourceRequirements,
    "ExecutionLogOutput": LogEntry,
    "DeadLetterOutput": DeadLetter,
    "BatchCreated": BatchResult,
    "Requeued": Requeued,
    "BulkRequeued": BulkRequeued,
    "ScheduleOutput": Schedule,
    "ScheduleDetailOutput": Schedule,  # with next_fire_times and last_runs
    "ScheduleRun": ScheduleRun,
    "LimitOutput": Limit,
    "JobTypeOutput": JobTypeInfo,
    "PauseOutput": Pause,
    "Paginated": Page,
}
#: (schema, field) -> the model's field that holds it under another name.
RENAMED = {
    ("BatchCreated", "keys"): "jobs",  # jobs by key
    ("BatchCreated", "jobs"): "all_jobs",
    ("Paginated", "results"): "items",
    ("Paginated", "next"): "has_next",
}
#: Fields deliberately not in the client, and why.
LEFT_OUT = {
    ("Paginated", "previous"): "the client walks pages forward, from the first",
}
#: Error bodies are read by the typed errors, not by models.
ERROR_SCHEMAS = {"Error", "IdempotencyConflict"}
#: Request schema -> the method whose parameters carry its fields; (schema, field) -> param.
REQUESTS = {
    "JobInputRequest": (
        Client.submit,
        {"resource_requirements": ("cpu_units", "memory_mb"), "id": ("job_id",)},
    ),
    "BatchJobInputRequest": (Graph.add, {"resource_requirements": ("cpu_units", "memory_mb")}),
    "BatchInputRequest": (Graph.add, {"jobs": ("self",)}),  # one add per job
    "ResourceRequirementsRequest": (Client.submit, {}),
    "DependenciesInputRequest": (Client().dependencies.add, {"depends_on": ("parents",)}),
    "DeadLetterRetryInputRequest": (Client().dlq.retry, {}),
    "DeadLetterBulkRetryInputRequest": (Client().dlq.retry_all, {}),
    "ScheduleInputRequest": (Client().schedules.create, {}),
    "PatchedScheduleInputRequest": (Client().schedules.update, {}),
    "LimitInputRequest": (Client().limits.create, {}),
    "PatchedLimitInputRequest": (Client().limits.update, {}),
    "PauseInputRequest": (Client().pauses.create, {}),
}
#: Query parameters the client sets itself.
PAGING = {"page", "page_size"}


def _schema(api: APIClient) -> dict[str, Any]:
    response = api.get("/api/schema/?format=json")
    assert response.status_code == 200
    return json.loads(response.content)


def _operations(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for methods in schema["paths"].values():
        yield from methods.values()


def _refs(node: Any) -> Iterator[str]:
    """Every component named under ``node`` (a response or a schema), nested ones too."""
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"].rsplit("/", 1)[1]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _model_name(component: str) -> str:
    return "Paginated" if component.startswith("Paginated") else component


def _resolve(target: Any, path: str) -> Any:
    for part in path.split("."):
        target = getattr(target, part)
    return target


@pytest.mark.django_db  # the schema lists the types worker pools registered
def test_every_operation_has_a_method_in_both_clients(anon_api: APIClient) -> None:
    ids = [op["operationId"] for op in _operations(_schema(anon_api))]
    assert len(ids) >= 26  # the walk found the API
    missing = sorted(set(ids) - set(OPERATIONS))
    assert not missing, f"operations without a client method: {missing}"
    for client in (Client(), AsyncClient()):
        for path in OPERATIONS.values():
            assert callable(_resolve(client, path)), f"{type(client).__name__}.{path}"


def test_every_response_field_has_a_model_field(anon_api: APIClient) -> None:
    schema = _schema(anon_api)
    components = schema["components"]["schemas"]
    seen: set[str] = set()
    pending = [ref for op in _operations(schema) for ref in _refs(op.get("responses", {}))]
    problems = []
    while pending:
        name = pending.pop()
        if name in seen or name in ERROR_SCHEMAS or "properties" not in components[name]:
            continue
        seen.add(name)
        pending.extend(_refs(components[name]))
        model = MODELS.get(_model_name(name))
        if model is None:
            problems.append(f"response schema {name} has no model")
            continue
        fields = {f.name for f in dataclasses.fields(model)}
        for prop in components[name]["properties"]:
            key = (_model_name(name), prop)
            if prop not in fields and RENAMED.get(key) not in fields and key not in LEFT_OUT:
                problems.append(f"{name}.{prop} has no counterpart in {model.__name__}")
    assert "JobOutput" in seen  # not vacuous
    assert not problems, "\n".join(problems)


def test_every_request_field_is_a_parameter(anon_api: APIClient) -> None:
    schema = _schema(anon_api)
    components = schema["components"]["schemas"]
    requested = {ref for op in _operations(schema) for ref in _refs(op.get("requestBody", {}))}
    requested |= {r for name in set(requested) for r in _refs(components[name])}
    requested = {name for name in requested if "properties" in components[name]}
    problems = [f"request schema {name} is not mapped" for name in requested - set(REQUESTS)]
    for name, (method, renamed) in REQUESTS.items():
        params = set(inspect.signature(method).parameters) | {"self"}
        for prop in components[name]["properties"]:
            if not set(renamed.get(prop, (prop,))) <= params:
                problems.append(f"{name}.{prop} is not a parameter of {method.__qualname__}")
    client = Client()
    for op in _operations(schema):
        method = _resolve(client, OPERATIONS[op["operationId"]])
        params = set(inspect.signature(method).parameters)
        for param in op.get("parameters", []):
            if param["in"] == "query" and param["name"] not in params | PAGING:
                problems.append(f"{op['operationId']}: ?{param['name']} is not a parameter")
    assert "JobInputRequest" in requested  # not vacuous
    assert not problems, "\n".join(problems)
