"""The blocking client's ``client.schedules`` and ``client.limits`` (staff).

s = client.schedules.create("nightly", job={"type": "send_email", "payload": {...}},
                            cron="0 3 * * *", timezone="Europe/Amsterdam")
job = client.schedules.trigger(s)             # fire it now: the job it submitted
client.limits.create("tenant:*", max_concurrency=3, rate="10/s")
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from draconic_sdk import rule_calls
from draconic_sdk.models import Job, Limit, Schedule
from draconic_sdk.namespaces import pages
from draconic_sdk.rule_calls import UNSET, Unset

if TYPE_CHECKING:
    from draconic_sdk.client import Client


class Schedules:
    """Your schedules: ``/schedules/``. ``job`` is the body of ``POST /jobs/`` each fire
    submits (no ``run_at`` or ``delay_seconds``: the schedule says when); give exactly one
    of ``cron`` (5 fields, read in ``timezone``) and ``interval_seconds``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(
        self,
        name: str,
        job: Mapping[str, Any],
        *,
        cron: str | Unset | None = UNSET,
        interval_seconds: int | Unset | None = UNSET,
        timezone: str | Unset = UNSET,
        overlap: str | Unset = UNSET,
        catchup: str | Unset = UNSET,
        catchup_limit: int | Unset = UNSET,
        start_at: datetime | str | Unset | None = UNSET,
        end_at: datetime | str | Unset | None = UNSET,
    ) -> Schedule:
        """Store a schedule; the server's defaults for what is not given (UTC, overlap
        ``allow``, catch-up ``latest``). Not retried: two creates are two schedules."""
        call = rule_calls.schedule_create(
            name=name,
            job=job,
            cron=cron,
            interval_seconds=interval_seconds,
            timezone=timezone,
            overlap=overlap,
            catchup=catchup,
            catchup_limit=catchup_limit,
            start_at=start_at,
            end_at=end_at,
        )
        return self._client.transport.run(call)

    def list(self, *, page_size: int = 100) -> Iterator[Schedule]:
        """Every schedule of yours, newest first, page after page."""
        run = self._client.transport.run
        fetch = lambda page: run(rule_calls.schedules_page(page=page, page_size=page_size))  # noqa: E731
        return pages(fetch, key=lambda s: s.id)

    def get(self, schedule: str | Schedule) -> Schedule:
        """One schedule with its next due times and last runs."""
        return self._client.transport.run(rule_calls.schedule_get(schedule))

    def update(
        self,
        schedule: str | Schedule,
        *,
        name: str | Unset = UNSET,
        job: Mapping[str, Any] | Unset = UNSET,
        cron: str | Unset | None = UNSET,
        interval_seconds: int | Unset | None = UNSET,
        timezone: str | Unset = UNSET,
        overlap: str | Unset = UNSET,
        catchup: str | Unset = UNSET,
        catchup_limit: int | Unset = UNSET,
        start_at: datetime | str | Unset | None = UNSET,
        end_at: datetime | str | Unset | None = UNSET,
    ) -> Schedule:
        """Change the fields given (None clears one); the due times follow the new rule."""
        fields: dict[str, Any] = {
            "name": name,
            "job": job,
            "cron": cron,
            "interval_seconds": interval_seconds,
        }
        fields.update(timezone=timezone, overlap=overlap, catchup=catchup)
        fields.update(catchup_limit=catchup_limit, start_at=start_at, end_at=end_at)
        return self._client.transport.run(rule_calls.schedule_update(schedule, **fields))

    def delete(self, schedule: str | Schedule) -> None:
        """Delete a schedule; the jobs it submitted stay."""
        self._client.transport.run(rule_calls.schedule_delete(schedule))

    def trigger(self, schedule: str | Schedule) -> Job:
        """Fire it now, outside its times (paused or not): the job it submitted."""
        return self._client.transport.run(rule_calls.schedule_trigger(schedule))

    def pause(self, schedule: str | Schedule) -> Schedule:
        """Stop its fires until ``resume`` (a trigger still fires it)."""
        return self._client.transport.run(rule_calls.schedule_pause(schedule, paused=True))

    def resume(self, schedule: str | Schedule) -> Schedule:
        """Fire it again from its next due time (per its catch-up policy)."""
        return self._client.transport.run(rule_calls.schedule_pause(schedule, paused=False))


class Limits:
    """The limit rules (staff): ``/admin/limits/``. ``key`` is ``type:<job type>``, an exact
    concurrency key or a prefix pattern (``tenant:*``); ``rate`` is "10/s", "600/m" or
    "1000/h"."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self) -> builtins.list[Limit]:
        """Every rule, with ``in_use`` (the leases it counts now)."""
        return self._client.transport.run(rule_calls.limits())

    def create(
        self,
        key: str,
        *,
        max_concurrency: int | Unset | None = UNSET,
        rate: str | Unset | None = UNSET,
    ) -> Limit:
        """Store a rule (a key has one rule: a second create of it is a 400)."""
        call = rule_calls.limit_create(key=key, max_concurrency=max_concurrency, rate=rate)
        return self._client.transport.run(call)

    def get(self, rule: int | str | Limit) -> Limit:
        return self._client.transport.run(rule_calls.limit_get(rule))

    def update(
        self,
        rule: int | str | Limit,
        *,
        key: str | Unset = UNSET,
        max_concurrency: int | Unset | None = UNSET,
        rate: str | Unset | None = UNSET,
    ) -> Limit:
        """Change the fields given; None lifts that limit."""
        call = rule_calls.limit_update(rule, key=key, max_concurrency=max_concurrency, rate=rate)
        return self._client.transport.run(call)

    def delete(self, rule: int | str | Limit) -> None:
        self._client.transport.run(rule_calls.limit_delete(rule))

    def find(self, key: str) -> Limit | None:
        """The rule of ``key`` (exactly as stored), or None."""
        return next((rule for rule in self.list() if rule.key == key), None)
