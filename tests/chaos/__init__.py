"""The fault-injection run of the real platform (``make chaos``, ``python -m tests.chaos``):
``services`` (its private PostgreSQL and Redis), ``plan`` (the load and its expected outcomes),
``experiment`` (submitting the load and injecting the faults), ``verify`` (the invariants),
``run`` (the driver) and ``handlers`` (the job types its workers run). ``test_chaos`` runs the
quick run as a test."""
