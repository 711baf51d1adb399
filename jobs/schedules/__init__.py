"""Schedules: jobs fired from a template by cron or by interval.

``models`` holds ``Schedule`` and ``ScheduleFire`` (one row per schedule and due time: the
unique row that makes each due time fire once); ``times`` the pure fire-time arithmetic
(cron through cronsim, in the schedule's time zone); ``firing`` what the scheduler process
runs; ``services`` what the API changes; ``api`` the ``/schedules/`` endpoints.
"""
