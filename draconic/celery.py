"""The Celery application. Configuration comes from Django settings (``CELERY_`` namespace)."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

from draconic.broker import install_closed_transport_guard
from draconic.logging import install_celery_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "draconic.settings")

#: Celery queues, one per job priority, consumed in this order (queue_order_strategy=priority).
PRIORITY_QUEUES = ("critical", "high", "normal", "low")

# kombu 5.7's Redis transport can crash a worker that reconnects after losing Redis
# (draconic/broker.py says how); the guard turns that into the connection error it handles.
install_closed_transport_guard()

app = Celery("draconic")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in PRIORITY_QUEUES]
# Celery's Django fix-up closes every database connection after every task unless this is
# set; reconnecting costs more than a small job. Connections are still recycled by
# CONN_MAX_AGE and health-checked (conn_health_checks) when the runner starts an attempt.
app.conf.update(CELERY_DB_REUSE_MAX=1000)
app.autodiscover_tasks(["workers"])
# Workers log through settings.LOGGING (JSON lines), not Celery's own text format.
install_celery_logging()
