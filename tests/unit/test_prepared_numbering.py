"""``jobs.engine.prepared``: how a statement with named parameters becomes a ``PREPARE``d
one (``prepare``), and how calls go out as one plain query string through a pooler
(``compose``: no ``PREPARE``, nothing left in the session). Pure: no database."""

from __future__ import annotations

import re

import pytest

from jobs.api import statements as submit_statements
from jobs.api.submit import JOB_COLUMNS
from jobs.engine import prepared, statements
from jobs.models import Job


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


def test_one_call_is_sent_as_written_with_its_own_values() -> None:
    text, values = prepared.compose(("SELECT %(b)s, %(a)s, %(b)s", {"a": 1, "b": 2}))
    assert text == "SELECT %(c1_b)s, %(c1_a)s, %(c1_b)s"
    assert values == {"c1_a": 1, "c1_b": 2}


def test_calls_naming_the_same_parameter_keep_their_own_values() -> None:
    text, values = prepared.compose(
        ("SELECT %(id)s::uuid[]", {"id": ["x"]}), ("SELECT %(id)s::int", {"id": 7})
    )
    assert text == "SELECT %(c1_id)s::uuid[]; SELECT %(c2_id)s::int"
    assert values == {"c1_id": ["x"], "c2_id": 7}


def test_a_literal_percent_is_left_for_the_driver_and_is_not_a_parameter() -> None:
    text, values = prepared.compose(("SELECT 'a%%b' LIKE %(pattern)s", {"pattern": "a"}))
    assert text == "SELECT 'a%%b' LIKE %(c1_pattern)s"
    assert values == {"c1_pattern": "a"}


def test_no_statement_is_prepared_or_executed_by_name() -> None:
    text, _ = prepared.compose(("SELECT 1", {}), ("SELECT 2", {}))
    assert text == "SELECT 1; SELECT 2"
    assert "PREPARE" not in text and "EXECUTE" not in text


def test_each_statement_gets_one_name_for_the_life_of_the_process() -> None:
    first = prepared.prepare(statements.READY_ORDER)
    assert prepared.prepare(statements.READY_ORDER) is first
    assert prepared.prepare(statements.ADMIT_JOBS).name != first.name


PREPARED = [
    getattr(module, n)
    for module in (statements, submit_statements)
    for n in dir(module)
    if n.isupper() and "%s" not in getattr(module, n)
]


@pytest.mark.parametrize("statement", PREPARED, ids=lambda s: s.split()[0][:20])
def test_every_named_statement_prepares_with_only_numbered_parameters(statement: str) -> None:
    p = prepared.prepare(statement)
    assert "%(" not in p.text and "%%" not in p.text
    assert p.text.count("$") >= len(p.parameters)


@pytest.mark.parametrize("statement", PREPARED, ids=lambda s: s.split()[0][:20])
def test_every_named_statement_composes_with_only_its_own_prefixed_parameters(
    statement: str,
) -> None:
    names = set(re.findall(r"%\((\w+)\)s", statement))
    text, values = prepared.compose((statement, dict.fromkeys(names)))
    assert set(re.findall(r"%\((\w+)\)s", text)) == {f"c1_{n}" for n in names} == set(values)
    assert "PREPARE" not in text


def columns_of(statement: str) -> list[str]:
    listed = re.search(r"INSERT INTO jobs_job\s*\(([^)]*)\)", statement)
    assert listed is not None
    return [c.strip() for c in listed.group(1).split(",")]


def test_the_job_inserts_name_every_column_of_the_model_in_its_order() -> None:
    model = [str(f.column) for f in Job._meta.concrete_fields]
    assert columns_of(submit_statements.INSERT_JOB) == model == list(JOB_COLUMNS)
    assert columns_of(submit_statements.INSERT_JOBS) == model
    named = re.findall(r"%\((\w+)\)s", submit_statements.INSERT_JOB)
    assert named == model  # each value goes to the column of its name
