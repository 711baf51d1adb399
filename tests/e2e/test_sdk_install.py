"""``pip install ./sdk`` gives a working client and ``draconic`` command in a fresh
virtualenv that has neither Django nor Celery, against a live platform.

pip finds the dependencies the way it is configured on this machine (pip.conf's
``find-links`` and local indexes), as a user's ``pip install`` would; the package is copied
out of the repository first so that building it leaves nothing in the work tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e import sdk_live
from tests.e2e.sdk_live import Live
from tests.harness import ROOT

pytestmark = pytest.mark.e2e
live = sdk_live.live  # the fixture


def _run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``argv`` outside the repository, with none of this process's Python path: only the
    shell's basics and pip's own settings (PIP_*, the user's pip.conf under HOME)."""
    kept = {k: v for k, v in os.environ.items() if k.startswith("PIP_") or k in ("HOME", "LANG")}
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env={"PATH": os.environ["PATH"], **kept, **env},
        check=False,
    )


def test_the_sdk_installs_and_runs_without_django_or_celery(live: Live, tmp_path: Path) -> None:
    source = tmp_path / "sdk"
    shutil.copytree(ROOT / "sdk", source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    python = shutil.which("python3.11") or sys.executable
    venv = tmp_path / "venv"
    assert _run([python, "-m", "venv", str(venv)], tmp_path).returncode == 0
    bin_ = venv / "bin"
    installed = _run([str(bin_ / "pip"), "install", "-q", f"{source}[cli]"], tmp_path)
    assert installed.returncode == 0, installed.stderr[-3000:]

    for server_side in ("django", "celery", "jobs", "draconic"):
        probe = _run([str(bin_ / "python"), "-c", f"import {server_side}"], tmp_path)
        assert probe.returncode != 0, f"{server_side} is importable in the SDK's venv"

    helped = _run([str(bin_ / "draconic"), "--help"], tmp_path)
    assert helped.returncode == 0 and "submit" in helped.stdout, helped.stderr

    ran = _run(
        [
            str(bin_ / "draconic"),
            "--json",
            "submit",
            "noop",
            "--payload",
            '{"seconds": 0.1}',
            "--wait",
        ],
        tmp_path,
        **live.env(),
    )
    assert ran.returncode == 0, ran.stderr
    assert '"status": "completed"' in ran.stdout
