"""``draconic_sdk.jobtypes``: a function's signature becomes its payload schema and check."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from draconic_sdk.jobtypes import (
    Defaults,
    JobType,
    RetryPolicy,
    job_type,
    job_types_in,
    schema_from_signature,
)


@job_type("resize", cpu_units=2, priority="high", retry=RetryPolicy(base_seconds=2, cap_seconds=8))
def resize(
    ctx: Any,
    url: str,
    width: int,
    mode: Literal["fit", "fill"] = "fit",
    tags: list[str] | None = None,
) -> dict[str, Any]:
    """Resize an image."""
    ctx.append(url)
    return {"url": url, "width": width, "mode": mode, "tags": tags}


def test_the_decorator_keeps_the_function_and_says_what_the_type_is() -> None:
    assert isinstance(resize, JobType)
    seen: list[str] = []
    assert resize(seen, "a.png", 10)["width"] == 10 and seen == ["a.png"]
    described = resize.describe()
    assert described["name"] == "resize"
    assert described["description"] == "Resize an image."
    assert described["defaults"] == {"priority": "high", "cpu_units": 2}
    assert described["retry"]["base_seconds"] == 2
    assert described["payload_schema"] == {
        "type": "object",
        "properties": {
            "url": {"type": "string"},
            "width": {"type": "integer"},
            "mode": {"enum": ["fit", "fill"], "default": "fit"},
            "tags": {
                "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}],
                "default": None,
            },
        },
        "required": ["url", "width"],
        "additionalProperties": False,
    }


def test_validation_names_each_missing_unknown_or_mistyped_field() -> None:
    assert resize.validate({"url": "a", "width": 3}) == {}
    assert resize.validate({"width": "3", "colour": "red", "mode": "zoom"}) == {
        "payload.url": "This field is required.",
        "payload.colour": "Unknown field.",
        "payload.mode": "'zoom' is not one of ['fit', 'fill']",
        "payload.width": "Must be of type integer.",
    }
    assert resize.validate({"url": "a", "width": True}) == {
        "payload.width": "Must be of type integer."
    }
    assert resize.validate([1]) == {"payload": "Must be a JSON object."}


def test_run_passes_the_payload_as_keywords_and_the_context_first() -> None:
    seen: list[str] = []
    assert resize.run(seen, {"url": "b", "width": 1, "mode": "fill"})["mode"] == "fill"
    assert seen == ["b"]

    @job_type()
    def plain(n: int, **rest: Any) -> int:
        return n + len(rest)

    assert plain.name.endswith("plain") and "." in plain.name
    assert not plain.takes_context and plain.run(None, {"n": 1, "x": 2}) == 2
    assert plain.validate({"n": 1, "anything": True}) == {}


def test_a_declared_schema_wins_over_the_signature() -> None:
    @job_type("raw", schema={"type": "object", "required": ["rows"]})
    def raw(ctx: Any, **payload: Any) -> None: ...

    assert raw.validate({}) == {"payload.rows": "This field is required."}


def test_bad_declarations_are_refused_when_the_module_loads() -> None:
    def bad(x: object) -> None: ...

    assert schema_from_signature(lambda when: None)["properties"] == {"when": {}}
    with pytest.raises(TypeError, match="cannot make a JSON Schema"):
        schema_from_signature(bad)
    with pytest.raises(ValueError, match="priority"):
        Defaults(priority="urgent")
    with pytest.raises(ValueError, match="positive"):
        Defaults(max_attempts=0)
    with pytest.raises(ValueError, match="base_seconds"):
        RetryPolicy(base_seconds=10, cap_seconds=1)


def test_retry_policy_decides_by_exception() -> None:
    policy = RetryPolicy(retry_on=(OSError,), give_up_on=(FileNotFoundError,))
    assert policy.retries(TimeoutError())  # an OSError
    assert not policy.retries(FileNotFoundError())
    assert not policy.retries(ValueError())
    assert RetryPolicy().retries(ValueError())
    assert policy.describe()["give_up_on"] == ["builtins.FileNotFoundError"]


def test_job_types_in_a_module() -> None:
    import sys

    assert resize in job_types_in(sys.modules[__name__])
