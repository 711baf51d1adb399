"""The console's remote-control commands, run by a worker's main process on a broadcast.

- ``draconic_quiet``: stop consuming from every queue (Sidekiq's "quiet"): the worker takes
  no new delivery and finishes the ones it runs; its heartbeat says ``quiet`` from then on.
  Undone only by a restart.
- ``draconic_stop``: the warm shutdown a SIGTERM starts (``workers.lifecycle``: running
  attempts get ``DRACONIC_SHUTDOWN_GRACE_SECONDS``, then are handed back uncharged). Celery's
  own ``shutdown`` command would stop the worker without that grace (it raises
  ``WorkerShutdown``, which sends no ``worker_shutting_down``), so this sends the signal the
  worker's own handler expects.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from celery.worker.control import control_command

from workers import liveness


@control_command()
def draconic_quiet(state: Any, **_: Any) -> dict[str, str]:
    consumer = state.consumer
    queues = sorted(q.name for q in (consumer.task_consumer.queues or ()))
    for queue in queues:
        consumer.call_soon(consumer.cancel_task_queue, queue)
    beat = liveness.current()
    if beat is not None:
        beat.mark_quiet()
    return {"ok": f"quiet: no longer consuming from {', '.join(queues) or 'any queue'}"}


@control_command()
def draconic_stop(state: Any, **_: Any) -> dict[str, str]:
    os.kill(os.getpid(), signal.SIGTERM)
    return {"ok": "warm shutdown started"}
