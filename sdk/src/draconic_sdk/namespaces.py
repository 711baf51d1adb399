"""The blocking client's groups of calls (``client.dependencies``, ``client.dlq``) and
the page walkers every list shares (``pages``, ``apages`` for the asyncio client)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from draconic_sdk import calls
from draconic_sdk.models import BulkRequeued, DeadLetter, Job, Requeued

if TYPE_CHECKING:
    from draconic_sdk.client import Client


class Dependencies:
    """``client.dependencies.add(job, [parents])``: ``POST /jobs/{id}/dependencies/``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def add(self, job: str | Job, parents: Iterable[str | Job]) -> Job:
        """Make ``job`` wait for ``parents`` too (it must not have started); the updated job."""
        return self._client.transport.run(calls.add_dependencies(job, parents))


class DeadLetters:
    """The dead-letter queue (staff): ``client.dlq.list()``, ``.retry(id)``, ``.retry_all()``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(
        self, *, type: str | None = None, reason: str | None = None, page_size: int = 100
    ) -> Iterator[DeadLetter]:
        """Every open dead letter matching the filters, newest first, page after page."""
        run = self._client.transport.run
        return pages(
            lambda page: run(
                calls.dlq_page(page=page, page_size=page_size, type=type, reason=reason)
            ),
            key=lambda d: d.id,
        )

    def retry(self, job: str | Job, *, descendants: bool = True) -> Requeued:
        """Send a dead-lettered job back to pending, with the descendants its failure
        cancelled unless ``descendants`` is False."""
        return self._client.transport.run(calls.dlq_retry(job, descendants=descendants))

    def retry_all(
        self,
        *,
        type: str | None = None,
        reason: str | None = None,
        all: bool = False,
        dry_run: bool = False,
        descendants: bool = True,
    ) -> BulkRequeued:
        """Re-drive the open dead letters matching ``type``/``reason`` (or ``all=True``); with
        ``dry_run`` only count them. At most 10,000 per call: repeat until ``requeued`` is 0."""
        call = calls.dlq_retry_bulk(
            type=type, reason=reason, all=all, dry_run=dry_run, descendants=descendants
        )
        return self._client.transport.run(call)


def pages(
    fetch: Callable[[int], calls.Page[Any]], *, key: Callable[[Any], Any], limit: int | None = None
) -> Iterator[Any]:
    """Every item of pages 1, 2, ... until the last (or ``limit`` items). An item seen on an
    earlier page is skipped: new rows at the head of a newest-first list shift the pages."""
    seen: set[Any] = set()
    page = 1
    while True:
        batch = fetch(page)
        for item in batch.items:
            if key(item) in seen:
                continue
            seen.add(key(item))
            yield item
            if limit is not None and len(seen) >= limit:
                return
        if not batch.has_next:
            return
        page += 1


async def apages(
    fetch: Callable[[int], Awaitable[calls.Page[Any]]],
    *,
    key: Callable[[Any], Any],
    limit: int | None = None,
) -> AsyncIterator[Any]:
    """As ``pages``, for the asyncio client: every item of every page, each once."""
    seen: set[Any] = set()
    page = 1
    while True:
        batch = await fetch(page)
        for item in batch.items:
            if key(item) in seen:
                continue
            seen.add(key(item))
            yield item
            if limit is not None and len(seen) >= limit:
                return
        if not batch.has_next:
            return
        page += 1
