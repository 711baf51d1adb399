"""Tiny installed distributions for tests, written as an installer would (a package and its
``*.dist-info`` with ``entry_points.txt``) into a directory a new Python process gets on its
``PYTHONPATH``: nothing is installed into the shared environment."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.harness import ROOT, SDK_SRC

#: Start Django as every Draconic process does and print the types it registered (JSON).
START_AND_LIST = (
    "import json, django; django.setup(); "
    "from jobs.types.registry import describe_types; "
    "from jobs.types.entrypoints import loaded_entry_points; "
    "print(json.dumps({'types': {t['name']: t for t in describe_types()}, "
    "'entry_points': loaded_entry_points()}))"
)


def write_distribution(
    site: Path, name: str, version: str, entry_points: str, files: dict[str, str]
) -> None:
    """Write the distribution ``name`` (its files, dedented, and its metadata) into ``site``."""
    for path, text in files.items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_text(textwrap.dedent(text))
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


def start_django(site: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """A new process that starts Django with ``site`` on its path and lists its types."""
    path = [str(site), str(ROOT), str(SDK_SRC), os.environ.get("PYTHONPATH", "")]
    return subprocess.run(
        [sys.executable, "-c", START_AND_LIST],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, path)),
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
