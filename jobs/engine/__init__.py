"""The engine: from a stored job to its terminal state.

- ``transitions`` + ``statements``: the state machine; every status change is a named move
  running one whole SQL statement (``prepared`` runs them: prepared statements on a
  connection of our own, plain queries through a transaction pooler).
- ``admission``: which ready jobs start now (the one policy: aged priority, round-robin
  between owners and concurrency keys, starvation) and moving them to ``queued``;
  ``capacity`` holds the one capacity rule; ``limits`` the limit rules (which apply to a job,
  which one holds it back: ``limits.holding``); ``ledger`` is the Redis ledger of both.
- ``wakeup``: dispatch requests (now, or due at a time) between processes; ``publish``: the
  Celery messages.
- ``attempts``: start, complete, fail (with ``retry``'s policy); ``cancel``: every way to
  ``cancelled``; ``deadletter``: into and out of the DLQ.
- ``sweeps``: the scheduler's safety net; ``recovery``: the ledger rebuilt from PostgreSQL;
  ``fence``: the dispatch lease (one dispatcher at a time, for a bounded time).
- ``resolver`` (pure graph functions) and ``graph`` (graph queries).
"""
