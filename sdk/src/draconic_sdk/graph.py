"""A dependency graph built in Python and stored in one atomic ``POST /jobs/batch/``.

    g = Graph()
    stats = g.add("data_processing", {"data": [3, 1, 4]})
    g.add("report_generation", {"title": "Daily"}, depends_on=[stats])
    result = client.submit_graph(g)      # result.jobs["report_generation-2"], ...

``add`` returns the node's key (given, or ``<type>-<n>``), which later nodes name in
``depends_on``; ids of jobs stored earlier may be mixed in. The server checks the graph
(cycles, unknown parents) and stores all of it or nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from draconic_sdk.models import Job


@dataclass
class Graph:
    """The jobs of one batch, in the order they were added."""

    nodes: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        depends_on: Iterable[str | Job] = (),
        priority: str | None = None,
        cpu_units: int | None = None,
        memory_mb: int | None = None,
        max_attempts: int | None = None,
        timeout_seconds: int | None = None,
    ) -> str:
        """Add a job; returns its key. Unset options take the server's defaults."""
        key = key or f"{type}-{len(self.nodes) + 1}"
        if any(node["key"] == key for node in self.nodes):
            raise ValueError(f"key {key!r} is already in this graph")
        node: dict[str, Any] = {"key": key, "type": type, "payload": dict(payload or {})}
        parents = [p.id if isinstance(p, Job) else p for p in depends_on]
        if parents:
            node["depends_on"] = parents
        node.update(job_options(priority, cpu_units, memory_mb, max_attempts, timeout_seconds))
        self.nodes.append(node)
        return key

    def to_json(self) -> dict[str, Any]:
        """The body of ``POST /jobs/batch/``."""
        return {"jobs": [dict(node) for node in self.nodes]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Graph:
        """A graph from the batch format (``{"jobs": [{"key", "type", ...}]}``), as
        ``draconic graph submit`` reads it; sent as it is, the server validates it."""
        jobs = data.get("jobs")
        if not isinstance(jobs, list):
            raise ValueError('a graph file holds {"jobs": [...]}')
        return cls(nodes=[dict(job) for job in jobs])


def job_options(
    priority: str | None,
    cpu_units: int | None,
    memory_mb: int | None,
    max_attempts: int | None,
    timeout_seconds: int | None,
) -> dict[str, Any]:
    """The optional fields of a job's body; what is None is left out (the server's default)."""
    body: dict[str, Any] = {}
    if priority is not None:
        body["priority"] = priority
    if cpu_units is not None or memory_mb is not None:
        resources = {"cpu_units": cpu_units, "memory_mb": memory_mb}
        body["resource_requirements"] = {k: v for k, v in resources.items() if v is not None}
    if max_attempts is not None:
        body["max_attempts"] = max_attempts
    if timeout_seconds is not None:
        body["timeout_seconds"] = timeout_seconds
    return body
