"""``python manage.py scheduler``: the dispatcher loop and the periodic safety net."""

from __future__ import annotations

import logging
import signal
import time
from types import FrameType
from typing import Any

import redis
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import Error as DBError
from django.db import connections

from draconic.processes import use_persistent_db_connections
from jobs.engine import admission, wakeup
from jobs.engine.sweeps import scheduler_tick
from jobs.schedules.firing import fire_due_schedules

logger = logging.getLogger("draconic.scheduler")


class Command(BaseCommand):
    help = (
        "Run the scheduler: admits jobs as soon as a dispatch is requested, and every tick "
        "re-drives due retries, settles attempts of lost workers, re-publishes lost messages "
        "and reconciles the resource ledger. Safe to run more than one."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="run one tick and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        use_persistent_db_connections()
        self.running = True
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        tick = settings.DRACONIC_SCHEDULER_TICK_SECONDS
        if options["once"]:
            fire_due_schedules()
            self.stdout.write(str(scheduler_tick()))
            return
        self.stdout.write(f"scheduler started (tick {tick}s)")
        next_tick = next_fire = 0.0
        while self.running:
            try:
                now = time.monotonic()
                if now >= next_fire:
                    # Schedules fire on time: sleep no longer than until the next due time.
                    next_fire = now + fire_due_schedules()
                if now >= next_tick:
                    scheduler_tick()
                    next_tick = now + tick
                elif wakeup.wait_for_request(min(next_tick - now, next_fire - now, 1.0)):
                    # Let the requests of jobs ending together pile up: one pass admits
                    # them all (dependency release does not wait: workers do it).
                    time.sleep(settings.DRACONIC_DISPATCH_LINGER_SECONDS)
                    admission.wait_for_room(settings.DRACONIC_DISPATCH_HOLD_SECONDS)
                    admission.dispatch()
                    next_fire = 0.0  # a schedule may have changed (its service woke us)
            except (DBError, redis.RedisError) as exc:
                # PostgreSQL or Redis is down: say so once a second and carry on when back.
                logger.warning("scheduler waiting for its services: %s", exc)
                connections.close_all()
                time.sleep(1)
            except Exception:
                # The safety net must not fall: log the bug and try again next tick.
                logger.exception("scheduler tick failed")
                connections.close_all()
                time.sleep(1)
        self.stdout.write("scheduler stopped")

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.running = False
