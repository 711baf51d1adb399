"""Running the engine's statements, several in one round trip: prepared on a connection of
its own, plain parametrised queries through a transaction pooler.

Prepared statements: psycopg2 sends every statement as text, so PostgreSQL parses and plans it
each time; for the state changes (a data-modifying CTE) planning costs several times what
running them does (docs/performance.md). On a direct connection each statement is
``PREPARE``d once per database session and then run with ``EXECUTE``; several go out as one
query string: one round trip, and in autocommit one transaction.

A statement names its parameters (``%(job_id)s``). ``PREPARE`` numbers them (``$1``...);
``EXECUTE`` gets the values as psycopg2 quotes them, each followed by the cast the statement
wrote after it (``%(job_ids)s::uuid[]`` is sent as ``ARRAY['...']::uuid[]``), because
``EXECUTE`` converts an argument to the prepared type with assignment casts only, and there
is none from ``text[]`` to ``uuid[]``. Quoting is psycopg2's own. A prepared statement lives
as long as its session and survives a rollback; a new connection starts with none.

Behind a transaction-pooling PgBouncer a session is not ours: the next transaction may run on
another server connection, which never saw the ``PREPARE``. There the same calls go out as
plain parametrised queries (``compose``: each call's parameter names prefixed with its
position, ``%(c1_job_id)s``, so two calls naming one parameter keep their own values), which
leave nothing in the session. Which one a connection uses is decided once, when it first runs
a statement (``pooled``): ``DRACONIC_DB_POOLED`` (``AUTO``, the default: pooled when the port
the server listens on, ``inet_server_port()``, is not the port we dialled, so a proxy sits in
between; a wrong guess is only slower, never wrong). docs/performance.md ("Plain queries
through a pooler") has the cost of each, measured side by side.
"""

from __future__ import annotations

import functools
import re
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection

_PARAMETER = re.compile(r"%\((\w+)\)s((?:::[a-z_]+(?:\[\])?)?)|%%")
_NAMED = re.compile(r"%\((\w+)\)s")
_lock = threading.Lock()
_count = 0


class _Session(set[str]):
    """The statements prepared on one database connection, and whether it is pooled."""

    def __init__(self, *, pooled: bool) -> None:
        super().__init__()
        self.pooled = pooled


_prepared: weakref.WeakKeyDictionary[Any, _Session] = weakref.WeakKeyDictionary()


def pooled(cursor: Any) -> bool:
    """Whether this connection goes through a pooler (``DRACONIC_DB_POOLED``): then nothing
    may be kept in its session."""
    mode = settings.DRACONIC_DB_POOLED
    if mode != "AUTO":
        return mode == "TRUE"
    dialled = connection.settings_dict.get("PORT") or 5432
    cursor.execute("SELECT inet_server_port()")
    (port,) = cursor.fetchone()
    return port is not None and int(port) != int(dialled)


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
    """Run each ``(statement, parameters)``, all in one query string (prepared statements on
    a connection of our own, plain queries through a pooler); the cursor then holds the
    result of the last one."""
    session = _prepared.get(connection.connection)
    if session is None:
        session = _prepared.setdefault(connection.connection, _Session(pooled=pooled(cursor)))
    if session.pooled:
        cursor.execute(*compose(*calls))
    else:
        _execute_prepared(cursor, session, calls)


def _execute_prepared(
    cursor: Any, done: _Session, calls: tuple[tuple[str, Mapping[str, Any]], ...]
) -> None:
    texts, values = [], []
    for statement, parameters in calls:
        prepared = prepare(statement)
        if prepared.name not in done:
            cursor.execute(f"PREPARE {prepared.name} AS {prepared.text}")
            done.add(prepared.name)
        texts.append(prepared.call())
        values += [parameters[name] for name in prepared.parameters]
    cursor.execute("; ".join(texts), values)


def compose(*calls: tuple[str, Mapping[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The one query string of ``calls`` and its values, each call's names kept apart."""
    texts: list[str] = []
    values: dict[str, Any] = {}
    for position, (statement, parameters) in enumerate(calls, start=1):
        text, names = _numbered(statement, position)
        texts.append(text)
        values.update({f"c{position}_{name}": parameters[name] for name in names})
    return "; ".join(texts), values


@functools.cache
def _numbered(statement: str, position: int) -> tuple[str, tuple[str, ...]]:
    """``statement`` with its parameter names prefixed by ``c<position>_``, and the names."""
    names: dict[str, None] = {}

    def rename(match: re.Match[str]) -> str:
        names.setdefault(match.group(1))
        return f"%(c{position}_{match.group(1)})s"

    return _NAMED.sub(rename, statement.strip()), tuple(names)


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
