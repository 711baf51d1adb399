"""The fault-injection run (``python -m tests.chaos --quick``) as a test: it starts its own PostgreSQL
cluster, Redis server, two workers and two schedulers, kills and restarts them under a load of
dependent jobs, and must end with nothing lost and nothing run twice."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.harness import ROOT

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(900)
def test_the_quick_chaos_run_loses_nothing_and_runs_no_attempt_twice():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    done = subprocess.run(
        [sys.executable, "-m", "tests.chaos", "--quick", "--timeout", "600"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-20000:]
    (summary,) = re.findall(r"^chaos: jobs=.*$", done.stdout, flags=re.MULTILINE)
    assert "lost=0 duplicates=0" in summary, output[-20000:]
    assert "order_violations=0" in summary
    assert summary.endswith("-> PASS")
    faults = re.search(
        r"faults=(\d+) \(worker_kill=(\d+) redis_restart=(\d+) redis_flush=(\d+) "
        r"postgres_restart=(\d+) scheduler_kill=(\d+)\)",
        summary,
    )
    assert faults is not None, summary
    total, kills, restarts, flushes, pg_restarts, scheduler_kills = map(int, faults.groups())
    assert kills >= 3 and restarts == flushes == pg_restarts == scheduler_kills == 1
    assert total == kills + restarts + flushes + pg_restarts + scheduler_kills
