"""``python manage.py scheduler``: the dispatcher loop and the periodic safety net."""

from __future__ import annotations

import logging
import math
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
        "Run the scheduler: admits jobs as soon as a dispatch is requested or a delayed job or "
        "a retry is due, and every tick settles attempts of lost workers, re-publishes lost messages "
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
        self.next_tick = self.next_fire = 0.0
        self.due = math.inf  # when the next waiting job's time comes (monotonic clock)
        while self.running:
            try:
                self._turn(tick)
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

    def _turn(self, tick: float) -> None:
        """The schedules that are due fire; then the tick when its time comes; a dispatch
        when a waiting job's time came or one is requested; otherwise block on the requests
        until the earliest of those times (at most a second, to see a stop). After each, read
        when the next job is due."""
        now = time.monotonic()
        if now >= self.next_fire:
            # Schedules fire on time: sleep no longer than until the next due time.
            self.next_fire = now + fire_due_schedules()
        if now >= self.next_tick:
            scheduler_tick()
            self.next_tick = now + tick
        elif now >= self.due:
            # A job's time came. Others come due right after it (a burst, a batch): linger as
            # for a request, so that one pass admits them all instead of one pass each.
            time.sleep(settings.DRACONIC_DISPATCH_LINGER_SECONDS)
            admission.dispatch()
        elif wakeup.wait_for_request(
            min(self.next_tick, self.due, self.next_fire, now + 1.0) - now
        ):
            # Let the requests of jobs ending together pile up: one pass admits
            # them all (dependency release does not wait: workers do it).
            time.sleep(settings.DRACONIC_DISPATCH_LINGER_SECONDS)
            admission.wait_for_room(settings.DRACONIC_DISPATCH_HOLD_SECONDS)
            admission.dispatch()
            if wakeup.take_schedule_check():  # saving a schedule wakes us: read its time
                self.next_fire = 0.0
        else:
            return  # no request came: the next turn sees which time has come
        due_in = wakeup.seconds_until_due()
        self.due = math.inf if due_in is None else time.monotonic() + due_in

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.running = False
