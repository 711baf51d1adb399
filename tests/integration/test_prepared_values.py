"""``jobs.engine.prepared`` against the real PostgreSQL: values reach a statement exactly as
given, hostile ones included (quotes, backslashes, NULLs, placeholders, array syntax, nested
arrays), because psycopg2 quotes them and the statement's own casts type them; prepared (a
connection of our own) and as plain queries (``DRACONIC_DB_POOLED=TRUE``, a pooler) alike."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from psycopg2.extras import Json

from jobs.engine import prepared
from jobs.models import Job


@pytest.fixture(autouse=True, params=["FALSE", "TRUE"], ids=["prepared", "pooled"])
def mode(request: Any, settings: Any) -> Iterator[str]:
    """Each test runs both ways (a connection that decided already is told again, and told
    back afterwards)."""
    settings.DRACONIC_DB_POOLED = request.param
    session = prepared._prepared.get(connection.connection) if connection.connection else None
    was = session.pooled if session is not None else False
    if session is not None:
        session.pooled = request.param == "TRUE"
    yield str(request.param)
    for session in list(prepared._prepared.values()):
        session.pooled = was


ROUND_TRIP = """
SELECT %(text)s::text AS text, %(items)s::text[] AS items, %(nested)s::int[] AS nested,
       %(ids)s::uuid[] AS ids, %(doc)s::jsonb AS doc, %(nothing)s::text AS nothing
"""

HOSTILE = [
    "O'Brien",
    "back\\slash\\",
    'a "quoted" word',
    "'; DROP TABLE jobs_job; --",
    "$1",
    "%s",
    "%(text)s",
    "%%",
    "NULL",
    "{a,b}",
    '}{,"\\',
    "line\nbreak\ttab",
    "é — 漢字 🐉",
    "",
]


def round_trip(**values: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "text": "",
        "items": [],
        "nested": [],
        "ids": [],
        "doc": Json({}),
        "nothing": None,
    }
    with connection.cursor() as cursor:
        prepared.execute(cursor, (ROUND_TRIP, {**defaults, **values}))
        (row,) = prepared.rows(cursor)
    return row


@pytest.mark.django_db
@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_string_arrives_as_itself(value: str) -> None:
    assert round_trip(text=value)["text"] == value
    assert Job._meta.db_table in connection.introspection.table_names()


@pytest.mark.django_db
def test_hostile_array_elements_and_a_null_element_arrive_as_themselves() -> None:
    items = [*HOSTILE, None]
    assert round_trip(items=items)["items"] == items


@pytest.mark.django_db
def test_a_nested_array_keeps_its_shape() -> None:
    assert round_trip(nested=[[1, 2], [3, 4]])["nested"] == [[1, 2], [3, 4]]


@pytest.mark.django_db
def test_a_null_is_a_null_and_an_empty_array_is_empty() -> None:
    row = round_trip()
    assert row["nothing"] is None and row["items"] == [] and row["ids"] == []


@pytest.mark.django_db
def test_uuid_arrays_and_json_documents_are_typed_by_the_statements_casts() -> None:
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    doc = {"quote": "it's", "nested": {"list": [1, None, "\\"]}}
    row = round_trip(ids=ids, doc=Json(doc))
    assert [str(i) for i in row["ids"]] == ids
    # Django's connection hands jsonb back as text (its JSONField decodes it).
    assert json.loads(row["doc"]) == doc


@pytest.mark.django_db
def test_several_statements_go_in_one_round_trip_and_the_last_one_answers() -> None:
    with connection.cursor() as cursor:
        prepared.execute(
            cursor, ("SELECT %(a)s::int AS a", {"a": 1}), ("SELECT %(b)s::int AS b", {"b": 2})
        )
        assert prepared.rows(cursor) == [{"b": 2}]


@pytest.mark.django_db(transaction=True)
def test_a_new_connection_prepares_again_or_needs_nothing_kept(mode: str) -> None:
    assert round_trip(text="before")["text"] == "before"
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        kept = cursor.fetchone()[0]
    # Through a pooler the session keeps nothing: its next transaction may be elsewhere.
    assert (kept == 0) == (mode == "TRUE")
    connection.close()
    assert round_trip(text="after")["text"] == "after"


@pytest.mark.django_db(transaction=True)
def test_auto_tells_a_direct_connection_by_its_port(settings: Any) -> None:
    settings.DRACONIC_DB_POOLED = "AUTO"
    connection.close()
    round_trip(text="x")
    assert prepared._prepared[connection.connection].pooled is False
