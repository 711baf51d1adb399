"""External worker pools: a team's own worker processes that run job types defined in the
team's code, consume the pool's Celery queues on Draconic's broker, and report every state
change through the worker API (``/workers/...``), never through Draconic's PostgreSQL."""
