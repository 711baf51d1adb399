"""Server-side prepared statements for the engine's statements.

psycopg2 sends every statement as text, so PostgreSQL parses and plans it each time; for the
state changes (a data-modifying CTE) planning costs several times what running them does
(docs/performance.md). Here each statement is ``PREPARE``d once per database session and then
run with ``EXECUTE``; several go out as one query string: one round trip, and in autocommit
one transaction.

A statement names its parameters (``%(job_id)s``). ``PREPARE`` numbers them (``$1``...);
``EXECUTE`` gets the values as psycopg2 quotes them, each followed by the cast the statement
wrote after it (``%(job_ids)s::uuid[]`` is sent as ``ARRAY['...']::uuid[]``), because
``EXECUTE`` converts an argument to the prepared type with assignment casts only, and there
is none from ``text[]`` to ``uuid[]``. Quoting is psycopg2's own. A prepared statement lives
as long as its session and survives a rollback; a new connection starts with none. (So the
processes need sessions of their own: behind a transaction-pooling PgBouncer, SQL-level
``PREPARE`` does not work; use session pooling.)
"""

from __future__ import annotations

import functools
import re
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import connection

_PARAMETER = re.compile(r"%\((\w+)\)s((?:::[a-z_]+(?:\[\])?)?)|%%")
_lock = threading.Lock()
_count = 0
_prepared: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Prepared:
    """A statement as PostgreSQL prepares it: its session-wide name, its text with ``$n``
    placeholders, and its parameters' names and casts in ``$n`` order."""

    name: str
    text: str
    parameters: tuple[str, ...]
    casts: tuple[str, ...]

    def call(self) -> str:
        """The ``EXECUTE`` of this statement, with psycopg2 placeholders for its values."""
        if not self.parameters:
            return f"EXECUTE {self.name}"
        return f"EXECUTE {self.name} ({', '.join('%s' + cast for cast in self.casts)})"


def execute(cursor: Any, *calls: tuple[str, Mapping[str, Any]]) -> None:
    """Run each ``(statement, parameters)`` as a prepared statement, all in one query string;
    the cursor then holds the result of the last one."""
    done = _prepared.setdefault(connection.connection, set())
    texts, values = [], []
    for statement, parameters in calls:
        prepared = prepare(statement)
        if prepared.name not in done:
            cursor.execute(f"PREPARE {prepared.name} AS {prepared.text}")
            done.add(prepared.name)
        texts.append(prepared.call())
        values += [parameters[name] for name in prepared.parameters]
    cursor.execute("; ".join(texts), values)


def rows(cursor: Any) -> list[dict[str, Any]]:
    """The cursor's result rows, each a dict by column name."""
    names = [column.name for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@functools.cache
def prepare(statement: str) -> Prepared:
    """Number the named parameters of ``statement`` (a name used twice is one parameter)."""
    global _count
    order: dict[str, str] = {}

    def number(match: re.Match[str]) -> str:
        if match.group(0) == "%%":
            return "%"
        name, cast = match.group(1), match.group(2)
        order.setdefault(name, cast)
        return f"${list(order).index(name) + 1}{cast}"

    text = _PARAMETER.sub(number, statement.strip())
    with _lock:
        _count += 1
        name = f"draconic_{_count}"
    return Prepared(name, text, tuple(order), tuple(order.values()))
