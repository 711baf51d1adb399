"""``draconic_sdk.django``: an external pool's worker inside a team's own Django project.

Add ``"draconic_sdk.django"`` to ``INSTALLED_APPS`` and set::

    DRACONIC = {
        "URL": "https://draconic.example.com",
        "WORKER_TOKEN": env("DRACONIC_WORKER_TOKEN"),
        "BROKER_URL": env("DRACONIC_BROKER_URL"),
        "POOL": "acme",
        "APPS": ["shop.jobs"],        # modules with the project's job types
        "CONCURRENCY": 4,
        "SHUTDOWN_GRACE_SECONDS": 30,  # a SIGTERM: running jobs' time to finish
    }

then ``python manage.py draconic_worker``: the job code runs with the project's own settings,
models and database. A SIGTERM stops it gracefully: running jobs get the grace to finish,
the rest are handed back to Draconic uncharged (``draconic_sdk.worker.shutdown``).
"""
