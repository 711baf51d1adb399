"""``jobs.engine.prepared.prepare``: how a statement with named parameters becomes a
``PREPARE``d one. Pure: no database."""

from __future__ import annotations

import pytest

from jobs.engine import prepared, statements


def test_named_parameters_are_numbered_in_order_of_first_use() -> None:
    p = prepared.prepare("SELECT %(b)s, %(a)s, %(b)s")
    assert p.text == "SELECT $1, $2, $1"
    assert p.parameters == ("b", "a")
    assert p.call() == f"EXECUTE {p.name} (%s, %s)"


def test_a_cast_after_a_parameter_is_kept_and_repeated_in_the_execute() -> None:
    p = prepared.prepare("SELECT * FROM t WHERE id = ANY(%(ids)s::uuid[]) AND n = %(n)s::int")
    assert p.text == "SELECT * FROM t WHERE id = ANY($1::uuid[]) AND n = $2::int"
    assert p.casts == ("::uuid[]", "::int")
    assert p.call() == f"EXECUTE {p.name} (%s::uuid[], %s::int)"


def test_a_literal_percent_is_unescaped_and_is_not_a_parameter() -> None:
    p = prepared.prepare("SELECT 'a%%b' LIKE %(pattern)s")
    assert p.text == "SELECT 'a%b' LIKE $1"
    assert p.parameters == ("pattern",)


def test_a_statement_without_parameters_is_executed_by_name() -> None:
    p = prepared.prepare("SELECT 1")
    assert p.parameters == () and p.call() == f"EXECUTE {p.name}"


def test_each_statement_gets_one_name_for_the_life_of_the_process() -> None:
    first = prepared.prepare(statements.READY_JOBS)
    assert prepared.prepare(statements.READY_JOBS) is first
    assert prepared.prepare(statements.READY_JOBS_AFTER).name != first.name


@pytest.mark.parametrize(
    "name", [n for n in dir(statements) if n.isupper() and "%s" not in getattr(statements, n)]
)
def test_every_engine_statement_prepares_with_only_numbered_parameters(name: str) -> None:
    p = prepared.prepare(getattr(statements, name))
    assert "%(" not in p.text and "%%" not in p.text
    assert p.text.count("$") >= len(p.parameters)
