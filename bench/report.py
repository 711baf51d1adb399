"""The result table: for every figure, Draconic's number, the baseline's number measured in
the same run, their ratio, the goal and whether it is met."""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Figure:
    """One row. ``goal`` is text; ``check(value, ratio)`` says whether it is met (None: no goal)."""

    name: str
    value: float
    baseline: float | None = None
    unit: str = ""
    goal: str = ""
    check: Callable[[float, float | None], bool] | None = None
    baseline_label: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or not self.baseline or math.isnan(self.baseline):
            return None
        return self.value / self.baseline

    @property
    def met(self) -> str:
        if self.check is None:
            return ""
        if math.isnan(self.value):
            return "n/a"
        return "yes" if self.check(self.value, self.ratio) else "NO"


def ratio_at_least(limit: float) -> Callable[[float, float | None], bool]:
    return lambda value, ratio: ratio is not None and ratio >= limit


def below(limit: float) -> Callable[[float, float | None], bool]:
    return lambda value, ratio: value < limit


def at_most(limit: float) -> Callable[[float, float | None], bool]:
    return lambda value, ratio: value <= limit


def at_least(limit: float) -> Callable[[float, float | None], bool]:
    return lambda value, ratio: value >= limit


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


@dataclass
class Report:
    mode: str
    settings: tuple[tuple[str, str], ...] = ()
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plans: list[tuple[str, str]] = field(default_factory=list)
    profiles: list[tuple[str, str]] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    load_before: tuple[float, float, float] = field(default_factory=lambda: _loadavg())

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)

    def rows(self) -> list[list[str]]:
        return [
            [
                f.name,
                fmt(f.value, f.unit),
                fmt(f.baseline, f.unit) + (f" ({f.baseline_label})" if f.baseline_label else ""),
                "-" if f.ratio is None else f"{f.ratio:.2f}",
                f.goal,
                f.met,
            ]
            for f in self.figures
        ]

    def table(self) -> str:
        header = ["figure", "Draconic", "baseline", "ratio", "goal", "met?"]
        rows = self.rows()
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        line = "  ".join("-" * w for w in widths)
        out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), line]
        out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        return "\n".join(out)

    def markdown(self) -> str:
        header = ["figure", "Draconic", "baseline", "ratio", "goal", "met?"]
        lines = [
            f"# Benchmark results ({self.mode})",
            "",
            self.conditions(),
            "",
            "| " + " | ".join(header) + " |",
            "|" + "|".join(" --- " for _ in header) + "|",
        ]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows()]
        if self.notes:
            lines += ["", "## Notes", "", *(f"- {n}" for n in self.notes)]
        if self.plans:
            lines += ["", "## Plans of the hot queries (large table)"]
        for title, plan in self.plans:
            lines += ["", f"### {title}", "", "```", plan, "```"]
        if self.profiles:
            lines += ["", "## Profiles (py-spy, inclusive share of on-CPU samples)"]
        for title, summary in self.profiles:
            lines += ["", f"### {title}", "", "```", summary, "```"]
        return "\n".join(lines) + "\n"

    def conditions(self) -> str:
        after = _loadavg()
        minutes = (time.time() - self.started) / 60
        return (
            f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(self.started))} at commit "
            f"{_commit()}, {minutes:.1f} min; {_cpu()}; Python {platform.python_version()}; "
            f"load average {self.load_before[0]:.2f} before, {after[0]:.2f} after."
            + (
                f" Settings: {' '.join(f'{k}={v}' for k, v in self.settings)}."
                if self.settings
                else ""
            )
        )

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.markdown())


def _loadavg() -> tuple[float, float, float]:
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return float(one), float(five), float(fifteen)


def _commit() -> str:
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' (with uncommitted changes)' if dirty else ''}"


def _cpu() -> str:
    import os

    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} x {model}"
