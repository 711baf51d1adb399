"""The operator dashboard: Django templates plus a little vanilla JS, no external assets.

Login required. Staff see every job; other users see their own. The index also lists the
schedules and (for staff) the limit rules with their use, and a job page says why the job
waits (``admin_api/dashboard_panels.py``). Pages render the current
state server-side; the browser then keeps the jobs table and the graph colours current from
the WebSocket ``/jobs/stream`` (events shaped by ``jobs.live.events.event_payload``) and polls
``stats.json`` for the figures no event carries (queue depths, resources, workers).
What changes between the render and the socket's subscription is not lost: the jobs page
replays from the last log id it rendered (``data-since``), and the job page re-reads
``graph.json`` once subscribed, each node carrying the cursor its status comes from.
The dependency graph is laid out here, in Python, and drawn as inline SVG.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import redis
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.db.models import Count, Max, OuterRef, QuerySet, Subquery
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from admin_api import access, dashboard_panels, metrics
from admin_api.console import charts, job_page, jobs_page, schedules
from admin_api.console.urls import ops_urlpatterns as console_ops_urls
from jobs.engine import ledger
from jobs.models import ExecutionLog, Job, JobDependency, JobStatus, Priority
from jobs.pools.services import pools_overview
from workers.liveness import alive_workers

#: Rows of the latest-jobs table, and of a job page's log.
LATEST_JOBS = 50
LOG_LINES = 200
#: A job page draws at most this many ancestors and as many descendants.
GRAPH_LIMIT = 200
#: Layout of the graph, in SVG user units.
NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 150, 40, 60, 24, 10
#: The only files served from static/dashboard/, with their content types.
ASSETS = {
    "dashboard.css": "text/css",
    "dashboard.js": "text/javascript",
    "console-jobs.css": "text/css",
    "console-jobs.js": "text/javascript",
    "console.css": "text/css",
    "charts.js": "text/javascript",
    "vendor/uPlot.iife.min.js": "text/javascript",
    "vendor/uPlot.min.css": "text/css",
    "console-ops.css": "text/css",
}
ASSET_DIR = Path(settings.BASE_DIR) / "static" / "dashboard"


def visible_jobs(user: Any) -> QuerySet[Job]:
    return access.visible_jobs(user)


def _status_counts(user: Any) -> dict[str, int]:
    if access.sees_everything(user):
        return metrics.job_counts()[0]
    counts = dict.fromkeys(JobStatus.values, 0)
    # count(*), not count(id): the owner index (owner, status, ...) alone answers it.
    rows = visible_jobs(user).order_by().values_list("status").annotate(n=Count("*"))
    counts.update(dict(rows))
    return counts


def stats(user: Any) -> dict[str, Any]:
    """Counts by status (the user's jobs, or all for staff), queue depths, resource use and
    workers (platform-wide: they carry no job data)."""
    try:
        usage: ledger.Usage | None = ledger.ledger_usage()
        workers = len(alive_workers())
    except redis.RedisError:
        usage, workers = None, None
    return {
        "jobs_by_status": _status_counts(user),
        "queue_depth": metrics.queue_depth(),
        "resources": None
        if usage is None
        else {
            "cpu_units": {"used": usage.cpu_units, "capacity": usage.capacity_cpu},
            "memory_mb": {"used": usage.memory_mb, "capacity": usage.capacity_memory},
        },
        "workers_alive": workers,
    }


@login_required
@require_GET
def dashboard_view(request: HttpRequest) -> HttpResponse:
    # Read before the jobs: the page's socket replays what is logged after it, so a change
    # committed between this render and the socket's subscription is not lost.
    since = ExecutionLog.objects.aggregate(last=Max("id"))["last"] or 0
    jobs = visible_jobs(request.user).order_by("-created_at", "-id")[:LATEST_JOBS]
    context = {
        "stats": stats(request.user),
        "jobs": list(
            jobs.only("id", "type", "priority", "status", "attempt", "created_at", "owner_id")
        ),
        "statuses": JobStatus.values,
        "ws_scope": "all" if access.sees_everything(request.user) else "",
        "latest": LATEST_JOBS,
        "since": since,
        "schedules": dashboard_panels.schedule_rows(request.user),
        "limits": dashboard_panels.limit_rows() if access.sees_everything(request.user) else None,
        "pools": pools_overview(),
    }
    return render(request, "dashboard/index.html", context)


@login_required
@require_GET
def stats_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(stats(request.user))


def _job_or_404(request: HttpRequest, job_id: UUID) -> Job:
    job = visible_jobs(request.user).filter(id=job_id).first()
    if job is None:
        raise Http404("no such job among those you may see")
    return job


@login_required
@require_GET
def job_view(request: HttpRequest, job_id: UUID) -> HttpResponse:
    job = _job_or_404(request, job_id)
    logs = list(ExecutionLog.objects.filter(job=job).order_by("-id")[:LOG_LINES])[::-1]
    context = {
        "job": job,
        "graph": job_graph(job, request.user),
        "waiting": dashboard_panels.waiting_lines(job),
        "logs": logs,
        "ws_scope": "all" if access.sees_everything(request.user) else "",
        **job_page.extra_context(job, request.user),
    }
    return render(request, "dashboard/job.html", context)


@login_required
@require_GET
def graph_view(request: HttpRequest, job_id: UUID) -> JsonResponse:
    graph = job_graph(_job_or_404(request, job_id), request.user)
    return JsonResponse(
        {
            "job_id": str(job_id),
            "nodes": [n.as_json() for n in graph.nodes],
            "edges": [{"source": e.source, "target": e.target} for e in graph.edges],
            "truncated": graph.truncated,
        }
    )


@require_GET
def asset_view(request: HttpRequest, name: str) -> FileResponse:
    """The dashboard's own CSS and JS, served by the project under any server (gunicorn or
    daphne) without collectstatic; they are also in STATICFILES_DIRS for a fronting server."""
    if name not in ASSETS:
        raise Http404(name)
    response = FileResponse((ASSET_DIR / name).open("rb"), content_type=ASSETS[name])
    response["Cache-Control"] = "no-cache"
    return response


# --- the dependency graph ----------------------------------------------------------------


@dataclass
class Node:
    id: str
    type: str
    status: str
    priority: str
    focus: bool
    #: The id of the job's last logged state change (its events' cursor); 0 if none.
    cursor: int = 0
    layer: int = 0
    x: int = 0
    y: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "status": self.status,
            "priority": self.priority,
            "focus": self.focus,
            "cursor": self.cursor,
            "layer": self.layer,
            "x": self.x,
            "y": self.y,
        }


@dataclass(frozen=True)
class Edge:
    """An arrow from a prerequisite (``source``) to the job that depends on it (``target``)."""

    source: str
    target: str
    x1: int = 0
    y1: int = 0
    x2: int = 0
    y2: int = 0


@dataclass(frozen=True)
class Graph:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int
    truncated: bool


_TABLE = JobDependency._meta.db_table
_ANCESTORS = f"""
WITH RECURSIVE up(id) AS (
    SELECT depends_on_id FROM {_TABLE} WHERE job_id = %s
    UNION SELECT d.depends_on_id FROM {_TABLE} d JOIN up ON d.job_id = up.id
) SELECT id FROM up LIMIT %s
"""
_DESCENDANTS = f"""
WITH RECURSIVE down(id) AS (
    SELECT job_id FROM {_TABLE} WHERE depends_on_id = %s
    UNION SELECT d.job_id FROM {_TABLE} d JOIN down ON d.depends_on_id = down.id
) SELECT id FROM down LIMIT %s
"""


def _related_ids(job_id: UUID) -> tuple[set[UUID], bool]:
    """Ancestors and descendants of a job (two recursive queries); True if cut at the limit."""
    found: set[UUID] = set()
    truncated = False
    with connection.cursor() as cursor:
        for sql in (_ANCESTORS, _DESCENDANTS):
            cursor.execute(sql, [job_id, GRAPH_LIMIT + 1])
            rows = {r[0] for r in cursor.fetchall()}
            truncated |= len(rows) > GRAPH_LIMIT
            found |= set(list(rows)[:GRAPH_LIMIT])
    return found, truncated


def job_graph(job: Job, user: Any) -> Graph:
    """The job with its ancestors and descendants (those the user may see), laid out left to
    right by longest path from a source. Four queries whatever the graph.

    Each node carries the cursor of the state change its status comes from (read in the same
    query), so the page can tell a live event that is newer than what it drew from one that
    is not."""
    ids, truncated = _related_ids(job.id)
    last_change = (
        ExecutionLog.objects.filter(job=OuterRef("id"))
        .exclude(to_status="")
        .order_by("-id")
        .values("id")[:1]
    )
    rows = (
        visible_jobs(user)
        .filter(id__in=ids | {job.id})
        .annotate(cursor=Subquery(last_change))
        .values_list("id", "type", "status", "priority", "cursor")
    )
    nodes = {
        str(i): Node(
            id=str(i),
            type=t,
            status=s,
            priority=str(Priority(p).label),
            focus=i == job.id,
            cursor=c or 0,
        )
        for i, t, s, p, c in rows
    }
    pairs = JobDependency.objects.filter(
        job_id__in=ids | {job.id}, depends_on_id__in=ids | {job.id}
    )
    links = [
        (str(parent), str(child))
        for child, parent in pairs.values_list("job_id", "depends_on_id")
        if str(parent) in nodes and str(child) in nodes
    ]
    return _layout(nodes, sorted(links), truncated)


def _layers(nodes: dict[str, Node], links: list[tuple[str, str]]) -> None:
    """Give each node its longest-path depth from a source (Kahn's order; the graph is a DAG)."""
    children: dict[str, list[str]] = defaultdict(list)
    indegree = dict.fromkeys(nodes, 0)
    for parent, child in links:
        children[parent].append(child)
        indegree[child] += 1
    frontier = sorted(n for n, d in indegree.items() if d == 0)
    while frontier:
        current = frontier.pop()
        for child in children[current]:
            nodes[child].layer = max(nodes[child].layer, nodes[current].layer + 1)
            indegree[child] -= 1
            if indegree[child] == 0:
                frontier.append(child)


def _layout(nodes: dict[str, Node], links: list[tuple[str, str]], truncated: bool) -> Graph:
    _layers(nodes, links)
    parents: dict[str, list[str]] = defaultdict(list)
    for parent, child in links:
        parents[child].append(parent)
    by_layer: dict[int, list[Node]] = defaultdict(list)
    for node in sorted(nodes.values(), key=lambda n: (n.type, n.id)):
        by_layer[node.layer].append(node)
    for layer in sorted(by_layer):
        # Barycentre: a node sits near the average row of its parents, to shorten edges.
        def rank(n: Node) -> float:
            ys = [nodes[p].y for p in parents[n.id]]
            return sum(ys) / len(ys) if ys else 0.0

        for row, node in enumerate(sorted(by_layer[layer], key=rank)):
            node.x = MARGIN + layer * (NODE_W + GAP_X)
            node.y = MARGIN + row * (NODE_H + GAP_Y)
    edges = [
        Edge(
            p,
            c,
            nodes[p].x + NODE_W,
            nodes[p].y + NODE_H // 2,
            nodes[c].x,
            nodes[c].y + NODE_H // 2,
        )
        for p, c in links
    ]
    width = max((n.x for n in nodes.values()), default=0) + NODE_W + MARGIN
    height = max((n.y for n in nodes.values()), default=0) + NODE_H + MARGIN
    return Graph(list(nodes.values()), edges, width, height, truncated)


urlpatterns = [
    path("", dashboard_view, name="dashboard"),
    path("stats.json", stats_view, name="dashboard-stats"),
    path("jobs/<uuid:job_id>/", job_view, name="dashboard-job"),
    path("jobs/<uuid:job_id>/graph.json", graph_view, name="dashboard-job-graph"),
    path("assets/<path:name>", asset_view, name="dashboard-asset"),
    *charts.urlpatterns,
    *schedules.urlpatterns,
    *jobs_page.urlpatterns,
    *job_page.urlpatterns,
    *console_ops_urls,
]
