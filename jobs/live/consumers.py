"""``ws://HOST/jobs/stream``: the live feed of job state changes.

Connecting
    Authenticate like the REST API (``?token=<key>``, ``Authorization: Token <key>`` or the
    session). An anonymous socket is accepted, sent ``{"type": "error", "code": 4401}`` and
    closed with code 4401 (accepting first lets browsers see the code; a refused handshake
    shows up as 1006). ``?scope=all`` (every user's jobs) is for staff and on-call viewers
    (``admin_api.view_everything``) only: anyone else gets an error and close code 4403, not
    a silent downgrade.

Subscribing
    By default a socket follows all the jobs of its user (with ``scope=all``: every job).
    ``?job=<id>`` and/or ``?batch=<id>`` narrow it to those; so do the messages
    ``{"action": "subscribe", "job": id}`` and ``{"action": "subscribe", "batch": id}``, which
    add to the narrowed set (``{"action": "subscribe"}`` alone widens back to everything).
    ``{"action": "unsubscribe", "job"|"batch": id}`` removes one, ``{"action": "unsubscribe"}``
    removes all. A job or batch the user may not see (another user's; any job with
    ``scope=all`` as staff) is answered ``{"type": "error", "code": "not_found"}`` and adds
    nothing. Each accepted request is acknowledged with ``{"type": "subscribed", ...}`` (or
    ``unsubscribed``); events flow from then on.

Resuming
    ``?since=<cursor>`` (or ``"since"`` in a subscribe message) first replays, in log order,
    the logged state changes the client may have missed since it saw that cursor, for what
    was just subscribed, each with ``"replay": true``, then ``{"type": "replay_done", "count",
    "cursor"}``; ``cursor`` there is the one to resume from next (the highest sent, or
    ``since``). What "may have missed" means is ``jobs.live.resume``: the changes after the
    cursor, and those of transactions that were still open when it was written, which commit
    later with *lower* cursors (a big batch). So a change the client already had can come
    again, with ``"replay": true`` and the same cursor: a client keeps the highest cursor it
    has seen and drops events whose cursor it has already handled. At most
    ``REPLAY_LIMIT`` rows are replayed; past that the client gets ``replay_truncated`` and pages
    the rest through ``GET /jobs/{id}/logs?since=<cursor>`` (the same cursors, the same rule).

    No gap: the socket is in its group before the log is read, and live events that arrive
    meanwhile wait in the channel layer (a consumer handles one message at a time), so they
    come after the replay. No duplicate on one socket: a live event whose cursor was already
    sent (recently: the last ``DEDUP_WINDOW`` cursors) is dropped. Cursors are compared as a
    set, not with ``<=``, because ids of different jobs commit out of order: a live event with
    a smaller cursor than the last replayed one can still be new.

Live events cost no database work here: the owner and the filters are checked against the
message itself. The layer is channels-redis's pub/sub layer: a server process subscribes to
a group's Redis channel while one of its sockets is in the group, and publishers (any
process, ``jobs.live.events``) never wait for a client. Pub/sub delivers at most once: a socket
whose server lost its Redis connection for a moment resumes with ``since``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs
from uuid import UUID

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from jobs.ids import parse_uuid
from jobs.live import events
from jobs.models import Job

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
REPLAY_LIMIT = 10_000
DEDUP_WINDOW = 10_000
MAX_SUBSCRIPTIONS = 1_000


@dataclass
class Subscription:
    """What a socket follows: everything in its scope, or the union of some jobs and batches."""

    everything: bool = True
    jobs: set[str] = field(default_factory=set)
    batches: set[str] = field(default_factory=set)

    def matches(self, event: dict[str, Any]) -> bool:
        return (
            self.everything or event["job_id"] in self.jobs or event.get("batch_id") in self.batches
        )


class RecentCursors:
    """The last ``size`` cursors sent, to drop an event that was already delivered."""

    def __init__(self, size: int = DEDUP_WINDOW) -> None:
        self.size = size
        self._order: deque[int] = deque()
        self._seen: set[int] = set()

    def add(self, cursor: int) -> bool:
        """Remember ``cursor``; False if it was already there (the event is a duplicate)."""
        if cursor in self._seen:
            return False
        self._seen.add(cursor)
        self._order.append(cursor)
        if len(self._order) > self.size:
            self._seen.discard(self._order.popleft())
        return True


def _query(scope: dict[str, Any]) -> dict[str, str]:
    raw = parse_qs(bytes(scope.get("query_string", b"")).decode("latin1"))
    return {key: values[-1] for key, values in raw.items()}


def _parse_since(value: Any) -> int | None:
    """A cursor: a non-negative integer (or its string); raises ValueError otherwise."""
    if value is None or value == "":
        return None
    text = str(value)
    if isinstance(value, bool) or not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise ValueError(value)  # a cursor is a bigint: ASCII digits, at most 18 of them
    return int(value)


class JobStreamConsumer(AsyncJsonWebsocketConsumer):
    """One socket: joins its user's group (or ``jobs.all``), filters and forwards events."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        query = _query(self.scope)
        if user is None or not user.is_authenticated:
            await self._refuse(
                CLOSE_UNAUTHENTICATED,
                "authentication required: send ?token=<key>, "
                "an 'Authorization: Token <key>' header or a session cookie",
            )
            return
        self.scope_all = query.get("scope") == "all"
        if self.scope_all and not await _sees_everything(user):
            await self._refuse(
                CLOSE_FORBIDDEN, "scope=all is for staff users and on-call viewers only"
            )
            return
        self.user_id: int = user.pk
        # Nothing until the query's subscription is accepted: a refused ?job= follows nothing.
        self.subscription = Subscription(everything=False)
        self.sent = RecentCursors()
        await self.accept()
        group = events.STAFF_GROUP if self.scope_all else events.owner_group(user.pk)
        # Join before reading the log, so nothing committed from now on can be missed.
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups = [group]  # left again by websocket_disconnect
        await self._subscribe(
            {"job": query.get("job"), "batch": query.get("batch"), "since": query.get("since")}
        )

    async def _refuse(self, code: int, detail: str) -> None:
        await self.accept()
        await self.send_json({"type": "error", "code": code, "detail": detail})
        await self.close(code=code, reason=detail[:120])

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        action = content.get("action") if isinstance(content, dict) else None
        if action == "subscribe":
            await self._subscribe(content)
        elif action == "unsubscribe":
            await self._unsubscribe(content)
        else:
            await self._error("bad_request", 'send {"action": "subscribe" | "unsubscribe", ...}')

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        """Like the JSON consumer's, but a frame that is not JSON gets an error, not a crash."""
        try:
            content = await self.decode_json(text_data or "")
        except ValueError:
            await self._error("bad_request", "messages must be JSON objects")
            return
        await self.receive_json(content)

    async def job_updates(self, message: dict[str, Any]) -> None:
        """Live events of one transaction from a group (``type: job.updates``)."""
        if not self.scope_all and message.get("owner_id") != self.user_id:
            return  # cannot happen in an owner group; never leak if it does
        for event in message["events"]:
            if self.subscription.matches(event) and self.sent.add(event["cursor"]):
                await self.send_json(event)

    async def _subscribe(self, request: dict[str, Any]) -> None:
        try:
            since = _parse_since(request.get("since"))
        except ValueError:
            await self._error("bad_request", "since must be a cursor: a non-negative integer")
            return
        job, batch = request.get("job") or None, request.get("batch") or None
        targets = await self._visible(job=job, batch=batch)
        if targets is None:
            return
        jobs, batches = targets
        sub = self.subscription
        if not jobs and not batches:
            sub.everything = True
            sub.jobs.clear()
            sub.batches.clear()
        elif len(sub.jobs) + len(sub.batches) >= MAX_SUBSCRIPTIONS:
            await self._error(
                "too_many", f"at most {MAX_SUBSCRIPTIONS} jobs and batches per socket"
            )
            return
        else:
            sub.everything = False
            sub.jobs.update(str(j) for j in jobs)
            sub.batches.update(str(b) for b in batches)
        await self.send_json(
            {
                "type": "subscribed",
                "scope": "all" if self.scope_all else "own",
                "job": job,
                "batch": batch,
                "since": since,
            }
        )
        if since is not None:
            await self._replay(since=since, jobs=jobs, batches=batches)

    async def _visible(self, *, job: Any, batch: Any) -> tuple[list[UUID], list[UUID]] | None:
        """The parsed ids if the user may see them; otherwise sends an error and returns None."""
        jobs = [parse_uuid(job)] if job is not None else []
        batches = [parse_uuid(batch)] if batch is not None else []
        owner = None if self.scope_all else self.user_id
        for kind, ids in (("job", jobs), ("batch", batches)):
            if ids and (ids[0] is None or not await _exists(kind, ids[0], owner)):
                shown = job if kind == "job" else batch
                await self._error("not_found", f"no {kind} {str(shown)[:64]} among yours")
                return None
        return jobs, batches  # type: ignore[return-value]

    async def _replay(self, *, since: int, jobs: list[UUID], batches: list[UUID]) -> None:
        rows = await database_sync_to_async(events.replay)(
            since=since,
            owner_id=None if self.scope_all else self.user_id,
            job_ids=jobs,
            batch_ids=batches,
            limit=REPLAY_LIMIT + 1,
        )
        truncated = len(rows) > REPLAY_LIMIT
        rows = rows[:REPLAY_LIMIT]
        for event in rows:
            if self.sent.add(event["cursor"]):
                await self.send_json(event)
        # The highest id sent, or ``since``: rows of transactions still open when ``since``
        # was written may come back with lower ids, and resuming from one of those would
        # replay what followed it again.
        cursor = max([since, *(event["cursor"] for event in rows)])
        if truncated:
            await self.send_json(
                {
                    "type": "replay_truncated",
                    "count": len(rows),
                    "cursor": cursor,
                    "detail": f"more than {REPLAY_LIMIT} changes since {since}: page through "
                    f"GET /jobs/{{id}}/logs?since={cursor} for the rest",
                }
            )
        else:
            await self.send_json({"type": "replay_done", "count": len(rows), "cursor": cursor})

    async def _unsubscribe(self, request: dict[str, Any]) -> None:
        job, batch = request.get("job"), request.get("batch")
        sub = self.subscription
        if job is None and batch is None:
            sub.everything = False
            sub.jobs.clear()
            sub.batches.clear()
        else:
            sub.jobs.discard(str(parse_uuid(job)))
            sub.batches.discard(str(parse_uuid(batch)))
        await self.send_json({"type": "unsubscribed", "job": job, "batch": batch})

    async def _error(self, code: str, detail: str) -> None:
        await self.send_json({"type": "error", "code": code, "detail": detail})


@database_sync_to_async
def _exists(kind: str, value: UUID, owner_id: int | None) -> bool:
    jobs = Job.objects.filter(id=value) if kind == "job" else Job.objects.filter(batch_id=value)
    if owner_id is not None:
        jobs = jobs.filter(owner_id=owner_id)
    return jobs.exists()


#: The permission of an on-call viewer (``admin_api.access``), who sees every job.
VIEW_EVERYTHING = "admin_api.view_everything"


@database_sync_to_async
def _sees_everything(user: Any) -> bool:
    return bool(user.is_staff or user.has_perm(VIEW_EVERYTHING))
