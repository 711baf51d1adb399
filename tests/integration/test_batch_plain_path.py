"""``plain_batch_specs`` (the batch endpoint's fast path) must never accept what
``BatchInputSerializer`` refuses, and must build the very specs the serializer builds."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from jobs.api.plain_batch import plain_batch_specs
from jobs.api.serializers import BatchInputSerializer

BASE: dict[str, Any] = {"key": "a", "type": "noop", "payload": {"n": 1}}

#: For each field, values the serializer takes and values it refuses or changes.
VARIANTS: dict[str, list[Any]] = {
    "type": ["noop", "fail", "nope", "", " noop", "noop ", 5, None, "x" * 65, "no\x00op"],
    "priority": ["critical", "low", "normal", "urgent", "", 2, None, "Normal", " high"],
    "payload": [{}, {"a": [1, {"b": None}]}, [], "x", None, 3, {"s": "\x00"}, {"x": "y" * 70000}],
    "resource_requirements": [
        {},
        {"cpu_units": 2},
        {"cpu_units": 2, "memory_mb": 256},
        {"cpu_units": 0},
        {"cpu_units": 2.0},
        {"cpu_units": "2"},
        {"cpu_units": True},
        {"cpu_units": 10**9},
        {"memory_mb": 10**9},
        {"gpus": 1},
        None,
        [],
    ],
    "depends_on": [[], ["b"], ["b", "b"], "b", None, [1], [""], ["x" * 65], ["b"] * 101],
    "max_attempts": [1, 20, 0, 21, 3.0, "3", True, None],
    "timeout_seconds": [1, 86400, 0, 86401, 60.5, "60", None],
    "key": ["a", "", " a", "x" * 64, "x" * 65, 5, None],
    "idempotency_key": ["k"],
    "concurrency_key": ["tenant:a", None, "", False, 0, [], " tenant:a", "type:x", "a b", 7],
    "run_at": ["2030-01-01T00:00:00Z", "2030-01-01T00:00:00", None],
    "delay_seconds": [0, 5, -1, None],
    "extra": [1],
}


def _serializer_specs(data: Any) -> list[Any] | None:
    serializer = BatchInputSerializer(data=data)
    return serializer.to_specs() if serializer.is_valid() else None


def _cases() -> list[dict[str, Any]]:
    cases = []
    for name, values in VARIANTS.items():
        for value in values:
            job = {**BASE, name: value}
            cases.append({"jobs": [job, {"key": "b", "type": "noop"}]})
    cases += [
        {"jobs": []},
        {"jobs": None},
        {"jobs": [BASE], "extra": 1},
        {"jobs": [BASE, BASE]},  # duplicate key
        {"jobs": [{"type": "noop"}] * 1001},
        [BASE],
    ]
    return cases


@pytest.mark.django_db
@pytest.mark.parametrize("data", _cases())
def test_the_plain_path_accepts_only_what_the_serializer_accepts_and_agrees(data: Any) -> None:
    plain = plain_batch_specs(data)
    if plain is not None:
        assert plain == _serializer_specs(data)


@pytest.mark.django_db
def test_the_plain_path_takes_the_common_shapes() -> None:
    """Without this the test above would pass for a fast path that never runs."""
    jobs = [
        {"key": f"k{i}", "type": "noop", "payload": {"n": i}, "depends_on": [f"k{i - 1}"]}
        for i in range(1, 50)
    ]
    common = [
        {"jobs": [{"key": "k0", "type": "noop"}, *jobs]},
        {"jobs": [{"type": "noop", "priority": p} for p in ("critical", "high", "low")]},
        {
            "jobs": [
                {
                    "type": "noop",
                    "resource_requirements": {"cpu_units": 2, "memory_mb": 64},
                    "max_attempts": 5,
                    "timeout_seconds": 30,
                }
            ]
        },
    ]
    for data in common:
        specs = plain_batch_specs(data)
        assert specs is not None
        assert specs == _serializer_specs(data)


@pytest.mark.django_db
def test_pairs_of_changes_agree_too() -> None:
    fields = ["priority", "resource_requirements", "max_attempts", "key"]
    for first, second in itertools.combinations(fields, 2):
        for a, b in itertools.product(VARIANTS[first], VARIANTS[second]):
            data = {"jobs": [{**BASE, first: a, second: b}]}
            plain = plain_batch_specs(data)
            if plain is not None:
                assert plain == _serializer_specs(data), data
