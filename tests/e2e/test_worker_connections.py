"""One PostgreSQL connection per worker process (issue 16): while a real worker runs jobs, its
lease keeper renewing their leases and polling their cancels, each of its processes (the main
one and each pool process) holds at most one connection, found in ``pg_stat_activity`` by
client port and mapped to its process through /proc."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

import tests.e2e.handlers  # noqa: F401  (registers the test-only job types here too)
from jobs.models import Job, JobStatus
from tests.e2e.conftest import THROUGH_PGBOUNCER
from tests.e2e.test_scheduling import TEST_TYPES
from tests.harness import Supervisor, wait_until

pytestmark = pytest.mark.skipif(
    THROUGH_PGBOUNCER, reason="through PgBouncer the server sees PgBouncer's ports"
)

JOBS = 2
#: How long both jobs are watched running: several cancel polls of each attempt. The jobs run
#: until the test opens their gate, so neither can end before the other has started.
SECONDS = 4


def process_tree(root: int) -> set[int]:
    """``root`` and every process descended from it, from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, ppid in parents.items() if ppid in tree} - tree
        tree |= more
        grew = bool(more)
    return tree


def socket_ports(pid: int) -> set[int]:
    """The local TCP ports of the sockets ``pid`` has open."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def connections_by_process(root: int) -> Counter[int]:
    """How many backends of the test database each process of ``root``'s tree holds."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT client_port FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND client_port IS NOT NULL"
        )
        backends = {port for (port,) in cursor.fetchall()}
    counts: Counter[int] = Counter()
    for pid in process_tree(root):
        try:
            counts[pid] = len(socket_ports(pid) & backends)
        except OSError:
            continue  # it exited meanwhile
    return counts


def test_each_worker_process_holds_one_connection_with_jobs_in_flight(
    platform: Supervisor, api: Any, tmp_path: Path
) -> None:
    platform.start_worker(concurrency=JOBS, DRACONIC_CANCEL_POLL_SECONDS="0.2", **TEST_TYPES)
    platform.start_scheduler(**TEST_TYPES)
    gate = tmp_path / "gate"
    ids = []
    for _ in range(JOBS):
        body = {"type": "gate", "payload": {"path": str(gate)}}
        response = api.post("/jobs/", body, format="json")
        assert response.status_code == 201, response.content
        ids.append(response.json()["id"])
    running = Job.objects.filter(id__in=ids, status=JobStatus.RUNNING)
    wait_until(lambda: running.count() == JOBS, timeout=120, message=platform.logs())

    worst: Counter[int] = Counter()
    samples = 0
    until = time.monotonic() + SECONDS
    while time.monotonic() < until:
        for pid, n in connections_by_process(platform.pid("worker")).items():
            worst[pid] = max(worst[pid], n)
        samples += 1
        assert running.count() == JOBS, platform.logs()  # gated: both still run
    gate.touch()
    assert samples > 0
    assert worst, "the worker's processes were found"
    assert max(worst.values()) == 1, worst  # none holds two
    # The pool processes running the jobs each hold theirs.
    assert sum(1 for n in worst.values() if n == 1) >= JOBS, worst
    wait_until(lambda: Job.objects.filter(id__in=ids, status=JobStatus.COMPLETED).count() == JOBS)
