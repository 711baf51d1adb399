"""Paused job types and priorities (staff): ``/admin/pauses/``. Admission passes over the jobs
of a paused type or priority until it is resumed (deleted); a job they hold says so in its
``waiting_on`` (``{"reason": "paused", ...}``)."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from draconic_sdk.calls import Call
from draconic_sdk.models import _when

if TYPE_CHECKING:
    from draconic_sdk.aio import AsyncClient
    from draconic_sdk.client import Client


@dataclass(frozen=True)
class Pause:
    """One pause: of ``job_type`` or of ``priority`` (the other is None)."""

    id: int
    job_type: str | None
    priority: str | None
    reason: str
    created_by: str | None
    created_at: datetime | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pause:
        return cls(
            id=data["id"],
            job_type=data.get("job_type"),
            priority=data.get("priority"),
            reason=data.get("reason") or "",
            created_by=data.get("created_by"),
            created_at=_when(data.get("created_at")),
        )


def _id(pause: int | str | Pause) -> str:
    return str(pause.id) if isinstance(pause, Pause) else str(pause)


def pauses_call() -> Call[list[Pause]]:
    return Call(
        "GET", "/admin/pauses/", lambda data: [Pause.from_json(p) for p in data], idempotent=True
    )


def pause_call(*, job_type: str | None, priority: str | None, reason: str) -> Call[Pause]:
    body: dict[str, Any] = {"reason": reason}
    if job_type is not None:
        body["job_type"] = job_type
    if priority is not None:
        body["priority"] = priority
    return Call("POST", "/admin/pauses/", Pause.from_json, json=body)


def resume_call(pause: int | str | Pause) -> Call[None]:
    return Call("DELETE", f"/admin/pauses/{_id(pause)}", lambda _: None)


class Pauses:
    """``Client.pauses``: list, pause (``create``) and resume (``delete``)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self) -> builtins.list[Pause]:
        return self._client.transport.run(pauses_call())

    def create(
        self, *, job_type: str | None = None, priority: str | None = None, reason: str = ""
    ) -> Pause:
        """Pause one job type or one priority (give exactly one); a second pause of the
        same is a Conflict."""
        return self._client.transport.run(
            pause_call(job_type=job_type, priority=priority, reason=reason)
        )

    def delete(self, pause: int | str | Pause) -> None:
        """Resume: the held jobs are dispatched at once."""
        self._client.transport.run(resume_call(pause))


class AsyncPauses:
    """``AsyncClient.pauses``: the calls of ``Pauses``, awaited."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(self) -> builtins.list[Pause]:
        return await self._client.transport.run(pauses_call())

    async def create(
        self, *, job_type: str | None = None, priority: str | None = None, reason: str = ""
    ) -> Pause:
        return await self._client.transport.run(
            pause_call(job_type=job_type, priority=priority, reason=reason)
        )

    async def delete(self, pause: int | str | Pause) -> None:
        await self._client.transport.run(resume_call(pause))
