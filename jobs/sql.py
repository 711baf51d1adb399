"""Server-side prepared statements for the hot paths' statements.

psycopg2 sends every statement as text, so PostgreSQL parses and plans it each time; for the
transitions' statements (a data-modifying CTE over every column of the job) planning costs
several times what running them does. Here each statement is ``PREPARE``d once per database
session and then run with ``EXECUTE``, and a list of them goes out as one query string: one
round trip, and in autocommit one transaction.

Parameters of ``EXECUTE`` are coerced to the types PostgreSQL inferred at ``PREPARE`` time
with assignment casts only, so Python lists are sent as untyped array literals
(``'{"a","b"}'``) rather than psycopg2's ``ARRAY[...]`` (a ``text[]`` that would not become
a ``uuid[]``). A prepared statement lives as long as its session and survives a rollback;
a new connection starts with none. (So the workers need a session of their own: behind a
transaction-pooling PgBouncer, SQL-level ``PREPARE`` does not work; use session pooling.)
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Sequence
from typing import Any

from django.db import connection

_lock = threading.Lock()
_names: dict[str, str] = {}
_prepared: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
_PLACEHOLDER = re.compile(r"%([%s])")


def execute(cursor: Any, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
    """Run ``statements`` (psycopg2-style SQL with ``%s`` placeholders, and their
    parameters) as prepared statements in one query string; the cursor then holds the
    result of the last one."""
    raw = connection.connection
    done = _prepared.setdefault(raw, set())
    calls, params = [], []
    for sql, values in statements:
        name = _name(sql)
        if name not in done:
            cursor.execute(f"PREPARE {name} AS {_numbered(sql)}")
            done.add(name)
        calls.append(f"EXECUTE {name} ({', '.join(['%s'] * len(values))})" if values else name)
        params += [_literal(v) for v in values]
    cursor.execute("; ".join(calls), params)


def _name(sql: str) -> str:
    with _lock:
        return _names.setdefault(sql, f"draconic_{len(_names)}")


def _numbered(sql: str) -> str:
    """``%s`` placeholders become ``$1``, ``$2``...; ``%%`` becomes ``%``."""
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        if match.group(1) == "%":
            return "%"
        count += 1
        return f"${count}"

    return _PLACEHOLDER.sub(number, sql)


def _literal(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return "{" + ",".join(_element(v) for v in value) + "}"
    return value


def _element(value: Any) -> str:
    if value is None:
        return "NULL"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
