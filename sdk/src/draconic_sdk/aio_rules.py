"""``AsyncClient.schedules`` and ``AsyncClient.limits``: the calls of ``rules``, awaited."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Awaitable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from draconic_sdk import rule_calls
from draconic_sdk.calls import Page
from draconic_sdk.models import Job, Limit, Schedule
from draconic_sdk.namespaces import apages
from draconic_sdk.rule_calls import UNSET, Unset

if TYPE_CHECKING:
    from draconic_sdk.aio import AsyncClient


class AsyncSchedules:
    """Your schedules: ``/schedules/``. ``job`` is the body of ``POST /jobs/`` each fire
    submits (no ``run_at`` or ``delay_seconds``: the schedule says when); give exactly one
    of ``cron`` (5 fields, read in ``timezone``) and ``interval_seconds``."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(
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
        return await self._client.transport.run(call)

    def list(self, *, page_size: int = 100) -> AsyncIterator[Schedule]:
        """Every schedule of yours, newest first, page after page."""

        def fetch(page: int) -> Awaitable[Page[Schedule]]:
            return self._client.transport.run(
                rule_calls.schedules_page(page=page, page_size=page_size)
            )

        return apages(fetch, key=lambda s: s.id)

    async def get(self, schedule: str | Schedule) -> Schedule:
        """One schedule with its next due times and last runs."""
        return await self._client.transport.run(rule_calls.schedule_get(schedule))

    async def update(
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
        return await self._client.transport.run(rule_calls.schedule_update(schedule, **fields))

    async def delete(self, schedule: str | Schedule) -> None:
        """Delete a schedule; the jobs it submitted stay."""
        await self._client.transport.run(rule_calls.schedule_delete(schedule))

    async def trigger(self, schedule: str | Schedule) -> Job:
        """Fire it now, outside its times (paused or not): the job it submitted."""
        return await self._client.transport.run(rule_calls.schedule_trigger(schedule))

    async def pause(self, schedule: str | Schedule) -> Schedule:
        """Stop its fires until ``resume`` (a trigger still fires it)."""
        return await self._client.transport.run(rule_calls.schedule_pause(schedule, paused=True))

    async def resume(self, schedule: str | Schedule) -> Schedule:
        """Fire it again from its next due time (per its catch-up policy)."""
        return await self._client.transport.run(rule_calls.schedule_pause(schedule, paused=False))


class AsyncLimits:
    """The limit rules (staff): ``/admin/limits/``. ``key`` is ``type:<job type>``, an exact
    concurrency key or a prefix pattern (``tenant:*``); ``rate`` is "10/s", "600/m" or
    "1000/h"."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(self) -> builtins.list[Limit]:
        """Every rule, with ``in_use`` (the leases it counts now)."""
        return await self._client.transport.run(rule_calls.limits())

    async def create(
        self,
        key: str,
        *,
        max_concurrency: int | Unset | None = UNSET,
        rate: str | Unset | None = UNSET,
    ) -> Limit:
        """Store a rule (a key has one rule: a second create of it is a 400)."""
        call = rule_calls.limit_create(key=key, max_concurrency=max_concurrency, rate=rate)
        return await self._client.transport.run(call)

    async def get(self, rule: int | str | Limit) -> Limit:
        return await self._client.transport.run(rule_calls.limit_get(rule))

    async def update(
        self,
        rule: int | str | Limit,
        *,
        key: str | Unset = UNSET,
        max_concurrency: int | Unset | None = UNSET,
        rate: str | Unset | None = UNSET,
    ) -> Limit:
        """Change the fields given; None lifts that limit."""
        call = rule_calls.limit_update(rule, key=key, max_concurrency=max_concurrency, rate=rate)
        return await self._client.transport.run(call)

    async def delete(self, rule: int | str | Limit) -> None:
        await self._client.transport.run(rule_calls.limit_delete(rule))

    async def find(self, key: str) -> Limit | None:
        """The rule of ``key`` (exactly as stored), or None."""
        return next((rule for rule in await self.list() if rule.key == key), None)
