"""Resuming from a cursor: which log rows a reader who had one row may still be missing.

A cursor is the id of an ExecutionLog row (an event's ``cursor``, a log line's ``id``). Ids
come from a sequence when a row is *inserted*; a row becomes visible when its transaction
*commits*. So ids do not arrive in order: a batch that inserted rows 100-199 and is still
committing is invisible while row 200, written by a quicker transaction, is already seen. A
client that saw 200 and later asked for "rows after 200" would never get 100-199.

The fix here is exact and costs the write path two column defaults and a BRIN index entry
(no statement changes, no round trip; docs/performance.md). PostgreSQL
records, on every log row, the transaction that wrote it (``xact_id``,
``pg_current_xact_id()``) and the snapshot of the statement that wrote it (``snapshot``,
``pg_current_snapshot()``: ``xmin:xmax:running``). A transaction that snapshot saw as finished
had committed (or rolled back) before the row existed, so its rows were visible before the
cursor's row was. Every other transaction was still running (in ``running``) or had not
started (``>= xmax``) and may commit after it. Resuming from cursor ``c`` therefore returns:

* every row after ``c`` (``id > c``), and
* every row, before or after ``c``, written by a transaction that ``c``'s snapshot did not see
  as finished (``xact_id >= xmax`` or ``xact_id in running``).

Nothing committed is left out; the rows of the second kind may already have reached the
client (a concurrent transaction that committed before it disconnected), so a reader drops
rows whose id it already has. That is the only duplicate: when nothing ran concurrently with
``c``, the answer is exactly the rows after it.

This is the "transactional outbox" relay's problem (a reader of a table fed by concurrent
transactions); relays that hand out one number usually stop below ``pg_snapshot_xmin`` and
so wait for the slowest transaction. Here live events are not held back: the
snapshot travels with every row, and the reader works out the window when it resumes. Rows
written before ``c`` by ``c``'s own transaction are not returned again: they committed
together (their events were sent together).

A cursor that names no row (0, or a line of a deleted job), or a row written before these
columns existed, falls back to ``id > c``.

What the database cannot see is the step after the commit: each process publishes its events
right after its own commit. A change that committed before ``c`` was written, but whose
process was slower to publish than ``c``'s (a stall of that process, or a publish lost while
Redis was unreachable), can reach a live client after ``c`` or not at all, and resuming from
``c`` does not bring it back. That window is the publisher's commit-to-PUBLISH delay, not a
transaction's length.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from jobs.models import ExecutionLog


@dataclass(frozen=True)
class Snapshot:
    """A ``pg_snapshot`` as text ``xmin:xmax:xip,...``: every transaction below ``xmin`` had
    finished, ``running`` were in progress, and those at or above ``xmax`` had not started."""

    xmin: int
    xmax: int
    running: tuple[int, ...]

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        xmin, xmax, running = text.split(":")
        return cls(int(xmin), int(xmax), tuple(int(x) for x in running.split(",") if x))


def missed_since(since: int) -> Q:
    """The filter on ExecutionLog for the rows a reader that had row ``since`` (and what was
    visible when it was written) may not have: the rows after it, and those of transactions
    still open when it was written, other than its own. The second kind are recent
    transactions (``xact_id`` at or above the snapshot's ``xmin``), which the
    ``log_xact_id_brin`` index finds without reading the old rows."""
    mark = ExecutionLog.objects.filter(id=since).values_list("xact_id", "snapshot").first()
    if mark is None or mark[1] is None:  # no such row, or one older than these columns
        return Q(id__gt=since)
    own, snapshot = mark[0], Snapshot.parse(mark[1])
    # Its own transaction is not "concurrent": its rows committed with it. (It often counts as
    # not started in its own snapshot: a statement's snapshot is taken before its first write
    # assigns the transaction its id.)
    concurrent = (Q(xact_id__gte=snapshot.xmax) | Q(xact_id__in=snapshot.running)) & ~Q(xact_id=own)
    return Q(id__gt=since) | concurrent
