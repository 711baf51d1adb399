"""Job types written as functions, the way a team writes them (``draconic_sdk.job_type``);
``tests/integration/test_job_types.py`` registers them for its tests and forgets them after."""

from __future__ import annotations

from typing import Any, Literal

from draconic_sdk import RetryPolicy, job_type
from jobs.types import JobContext


class Flaky(Exception):
    """Worth another try (in ``retry_on``)."""


class Hopeless(Flaky):
    """A Flaky that must not be retried all the same (in ``give_up_on``, which wins)."""


@job_type(
    "tests.images.resize",
    priority="high",
    cpu_units=2,
    memory_mb=256,
    max_attempts=5,
    timeout_seconds=30,
    retry=RetryPolicy(
        base_seconds=40, cap_seconds=40, jitter=0, retry_on=(Flaky,), give_up_on=(Hopeless,)
    ),
)
def resize(ctx: JobContext, url: str, width: int, keep_ratio: bool = True) -> dict[str, Any]:
    """Resizes the image at ``url`` to ``width`` pixels (pretend)."""
    ctx.log("resizing", url=url)
    if url == "hopeless":
        raise Hopeless("the image is gone")
    if url == "flaky":
        raise Flaky("the image server is busy")
    if url == "broken":
        raise ValueError("not an image")
    return {"url": url, "width": width, "keep_ratio": keep_ratio, "attempt": ctx.attempt}


@job_type("tests.greet")
def greet(name: str, tone: Literal["plain", "warm"] = "plain", times: int | None = None) -> str:
    """Greets ``name``: no context, no defaults, the deployment's retry policy."""
    return f"hello {name}" * (times or 1)
