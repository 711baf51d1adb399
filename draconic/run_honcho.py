"""``python -m draconic.run_honcho ARGS...``: honcho, as ``make run`` runs the Procfile.

honcho sends SIGKILL to every process still running five seconds after the first one stopped
(``honcho.manager.KILL_WAIT``, which it offers no option for). A worker's warm shutdown
lasts up to ``DRACONIC_SHUTDOWN_GRACE_SECONDS``: five seconds in, honcho would kill its
supervisor (``draconic.supervise``, which keeps the worker in a session of its own, so the
worker would carry on orphaned) and say it killed the worker. Here honcho waits for the grace
plus a margin beyond the supervisor's own stop timeout, so the supervisor, not honcho, ends a
command that does not stop.
"""

from __future__ import annotations

import sys

import honcho.manager
from honcho.command import main

from draconic.supervise import stop_timeout

#: honcho kills this long after the supervisors would have killed their commands.
MARGIN = 5.0


def kill_wait() -> float:
    return stop_timeout() + MARGIN


if __name__ == "__main__":
    honcho.manager.KILL_WAIT = kill_wait()  # a module global, read at every loop
    sys.exit(main())
