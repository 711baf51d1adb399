"""``make cluster``'s quick variant as a test: nine network-namespace hosts, a load through the
balancer, an api host killed during submissions, a worker host cut off mid-job for longer than
its lease, PgBouncer restarted and a slow lossy worker link; nothing may be lost or run twice,
and every namespace it made must be gone afterwards."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.cluster import netns
from tests.harness import ROOT

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("ip") is None,
        reason="make cluster needs root and iproute2's ip (network namespaces, veth, a bridge)",
    ),
]


@pytest.mark.timeout(900)
def test_the_quick_cluster_run_loses_nothing_and_leaves_nothing_behind() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    done = subprocess.run(
        [sys.executable, "-m", "tests.cluster", "--quick", "--timeout", "600"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-20000:]
    (summary,) = re.findall(r"^cluster: hosts=.*$", done.stdout, flags=re.MULTILINE)
    assert summary.endswith("-> PASS"), summary
    for invariant in ("lost=0", "duplicates=0", "order_violations=0", "feed_missing=0"):
        assert f" {invariant} " in summary, summary
    injected = re.search(r"faults=\d+ \((.*?)\)", summary)
    assert injected is not None, summary
    faults = dict(re.findall(r"(\w+)=(\d+)", injected[1]))
    assert faults == {
        "api_kill": "1",
        "pgbouncer_restart": "1",
        "worker_cut": "1",
        "worker_netem": "1",
    }
    assert re.search(r"cut_jobs=[1-9]", done.stdout), "the worker was cut off mid-job"
    assert netns.namespaces() == []
    assert netns.BRIDGE not in subprocess.run(["ip", "link"], capture_output=True, text=True).stdout
