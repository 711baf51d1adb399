"""The procrastinate baseline: the PostgreSQL job queue Django teams pick instead of Draconic.

A Django project of its own (``settings``), with procrastinate's Django integration
(``procrastinate.contrib.django``: its migrations, its app, its worker command) on a database of
its own, and one no-op task (``tasks.noop``). The bench defers jobs with ``batch_defer``
(``defer``), runs procrastinate's own worker (``manage.py procrastinate worker``) with as many
processes and as much concurrency as Draconic's worker gets, and reads when each job succeeded
from procrastinate's event table.
"""
