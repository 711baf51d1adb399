"""Which scheduler host holds the dispatcher's lease (``jobs.engine.fence``), for the freeze
fault to freeze the holder. The lease's value names its holder as ``<pid>@<host>``; every
namespace host shares this machine's hostname, and ``ip netns exec`` keeps the pid, so the
pid says which scheduler it is. An API or worker process may hold the lease too (the inline
dispatch after a submit or a finished job): then no scheduler is the holder."""

from __future__ import annotations

from typing import Any

from tests.cluster import topology


def lock_holder(fleet: Any) -> str | None:
    """The name of the scheduler host holding the dispatch lease, or None."""
    from jobs.engine import fence

    held = fence.holder()
    if held is None:
        return None
    pid = held[1].partition("@")[0]
    for host in topology.SCHEDULERS:
        if pid.isdigit() and fleet.pid(host.name) == int(pid):
            return host.name
    return None
