"""``--profile``: sample the API (during the single-job submissions) and the worker (during
the end-to-end run) with py-spy, and summarise where the time goes.

Each profile is written as collapsed stacks (``bench/results/profile-<name>.txt``, readable
by flamegraph.pl or speedscope) and summarised as the frames with the largest inclusive
share of samples.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path

from bench.config import RESULTS
from tests.harness import VENV_BIN

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]+?)(?::\d+)?\)$")
#: Our own packages: their frames are listed by inclusive share.
OWN = ("jobs/", "workers/", "draconic/", "admin_api/", "bench/")


def py_spy() -> str | None:
    found = VENV_BIN / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


class Profiler:
    """One py-spy recording of a process and its children."""

    def __init__(self, name: str, pid: int) -> None:
        self.name = name
        self.path = RESULTS / f"profile-{name}.txt"
        exe = py_spy()
        if exe is None:
            raise RuntimeError("--profile needs py-spy (pip install -r requirements-dev.txt)")
        self.proc = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--subprocesses",
                "--rate",
                "200",
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(self.path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def stop(self) -> str:
        """End the recording (py-spy writes its file on SIGINT) and return a summary."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return summarise(self.path) if self.path.exists() else f"{self.name}: no samples"


def _frames(stack: str) -> list[tuple[str, str]]:
    """``(function, file)`` of each frame of a collapsed stack, root first, without the
    ``process`` pseudo-frame."""
    out = []
    for raw in stack.split(";"):
        match = _FRAME.match(raw.strip())
        if match:
            out.append((match["func"], match["file"]))
    return out


def _package(file: str) -> str:
    head = file.split("/", 1)[0]
    return head.removesuffix(".py") if "/" in file or file.endswith(".py") else file


def summarise(path: Path, top: int = 15) -> str:
    """Where the on-CPU samples went: our own functions by inclusive share (each counted
    once per stack), and the packages whose code was on the CPU (self time of the leaf)."""
    own: Counter[str] = Counter()
    leaf_packages: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        frames = _frames(stack)
        if not count.isdigit() or not frames:
            continue
        n = int(count)
        total += n
        leaf_packages[_package(frames[-1][1])] += n
        for label in {f"{func} ({file})" for func, file in frames if file.startswith(OWN)}:
            own[label] += n
    if not total:
        return "no samples"
    lines = [f"{total} samples; our functions, inclusive:"]
    lines += [f"  {n / total:6.1%}  {label}" for label, n in own.most_common(top)]
    lines.append("on-CPU code by package (self time):")
    lines += [f"  {n / total:6.1%}  {pkg}" for pkg, n in leaf_packages.most_common(top)]
    return "\n".join(lines)
