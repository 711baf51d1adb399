"""The REST calls of schedules (``/schedules/``) and limit rules (``/admin/limits/``), as
``calls`` describes the job calls: data only, sent by either client's transport.

An update sends only the fields given: ``UNSET`` (the default) leaves a field as it is,
while None clears it (a limit's ``rate``, a schedule's ``end_at``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any, Final, Literal

from draconic_sdk.calls import Call, Page, _page
from draconic_sdk.models import Job, Limit, Schedule


class _Unset(Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset.UNSET
Unset = Literal[_Unset.UNSET]


def _body(**fields: Any) -> dict[str, Any]:
    """The fields given (not ``UNSET``), datetimes in ISO 8601."""
    return {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in fields.items()
        if value is not UNSET
    }


def schedule_id_of(schedule: str | Schedule) -> str:
    return schedule.id if isinstance(schedule, Schedule) else str(schedule)


def schedule_create(*, name: str, job: Mapping[str, Any], **fields: Any) -> Call[Schedule]:
    """``POST /schedules/``: not repeated (two creates are two schedules)."""
    body = _body(name=name, job=dict(job), **fields)
    return Call("POST", "/schedules/", Schedule.from_json, json=body)


def schedules_page(*, page: int, page_size: int) -> Call[Page[Schedule]]:
    """``GET /schedules/``: one page, newest first (without next times and runs)."""
    params = {"page": str(page), "page_size": str(page_size)}
    return Call("GET", "/schedules/", _page(Schedule.from_json), params=params, idempotent=True)


def schedule_get(schedule: str | Schedule) -> Call[Schedule]:
    path = f"/schedules/{schedule_id_of(schedule)}"
    return Call("GET", path, Schedule.from_json, idempotent=True)


def schedule_update(schedule: str | Schedule, **fields: Any) -> Call[Schedule]:
    """``PATCH /schedules/{id}`` with the fields given; setting them twice is setting them once."""
    path = f"/schedules/{schedule_id_of(schedule)}"
    return Call("PATCH", path, Schedule.from_json, json=_body(**fields), idempotent=True)


def schedule_delete(schedule: str | Schedule) -> Call[None]:
    """``DELETE /schedules/{id}``: not repeated (a second one is a 404)."""
    path = f"/schedules/{schedule_id_of(schedule)}"
    return Call("DELETE", path, lambda _: None)


def schedule_trigger(schedule: str | Schedule) -> Call[Job]:
    """``POST /schedules/{id}/trigger``: fire it now, once per call (never repeated)."""
    path = f"/schedules/{schedule_id_of(schedule)}/trigger"
    return Call("POST", path, Job.from_json)


def schedule_pause(schedule: str | Schedule, *, paused: bool) -> Call[Schedule]:
    """``POST /schedules/{id}/pause`` or ``/resume``."""
    path = f"/schedules/{schedule_id_of(schedule)}/{'pause' if paused else 'resume'}"
    return Call("POST", path, Schedule.from_json)


def limit_id_of(rule: int | str | Limit) -> str:
    return str(rule.id) if isinstance(rule, Limit) else str(rule)


def limits() -> Call[list[Limit]]:
    """``GET /admin/limits/``: every rule (one answer, not paged)."""
    return Call(
        "GET", "/admin/limits/", lambda data: [Limit.from_json(r) for r in data], idempotent=True
    )


def limit_create(*, key: str, **fields: Any) -> Call[Limit]:
    return Call("POST", "/admin/limits/", Limit.from_json, json=_body(key=key, **fields))


def limit_get(rule: int | str | Limit) -> Call[Limit]:
    return Call("GET", f"/admin/limits/{limit_id_of(rule)}", Limit.from_json, idempotent=True)


def limit_update(rule: int | str | Limit, **fields: Any) -> Call[Limit]:
    path = f"/admin/limits/{limit_id_of(rule)}"
    return Call("PATCH", path, Limit.from_json, json=_body(**fields), idempotent=True)


def limit_delete(rule: int | str | Limit) -> Call[None]:
    return Call("DELETE", f"/admin/limits/{limit_id_of(rule)}", lambda _: None)
