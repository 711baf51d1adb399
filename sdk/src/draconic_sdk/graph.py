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
from datetime import datetime
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
        run_at: datetime | str | None = None,
        delay_seconds: float | None = None,
        concurrency_key: str | None = None,
    ) -> str:
        """Add a job; returns its key. Unset options take the server's defaults."""
        key = key or f"{type}-{len(self.nodes) + 1}"
        if any(node["key"] == key for node in self.nodes):
            raise ValueError(f"key {key!r} is already in this graph")
        node: dict[str, Any] = {"key": key, "type": type, "payload": dict(payload or {})}
        parents = [p.id if isinstance(p, Job) else p for p in depends_on]
        if parents:
            node["depends_on"] = parents
        options = JobOptions(
            priority=priority,
            cpu_units=cpu_units,
            memory_mb=memory_mb,
            max_attempts=max_attempts,
            timeout_seconds=timeout_seconds,
            run_at=run_at,
            delay_seconds=delay_seconds,
            concurrency_key=concurrency_key,
        )
        node.update(options.to_json())
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


@dataclass(frozen=True)
class JobOptions:
    """The optional fields of a job (None: the job type's default, left out of the body).
    ``run_at``/``delay_seconds`` (not before then) and ``concurrency_key`` (the key its
    limits count it under) need a server that knows them; an older one answers a 400
    naming the field."""

    priority: str | None = None
    cpu_units: int | None = None
    memory_mb: int | None = None
    max_attempts: int | None = None
    timeout_seconds: int | None = None
    run_at: datetime | str | None = None
    delay_seconds: float | None = None
    concurrency_key: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.cpu_units is not None or self.memory_mb is not None:
            resources = {"cpu_units": self.cpu_units, "memory_mb": self.memory_mb}
            body["resource_requirements"] = {k: v for k, v in resources.items() if v is not None}
        for name in ("priority", "max_attempts", "timeout_seconds", "delay_seconds"):
            if getattr(self, name) is not None:
                body[name] = getattr(self, name)
        if self.concurrency_key is not None:
            body["concurrency_key"] = self.concurrency_key
        if self.run_at is not None:
            run_at = self.run_at
            body["run_at"] = run_at.isoformat() if isinstance(run_at, datetime) else run_at
        return body
