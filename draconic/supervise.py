"""``python -m draconic.supervise NAME -- COMMAND...``: keep one process of ``make run`` alive.

honcho stops every process of the Procfile when one of them exits, so one crashed worker
(as kombu 5.7's Redis transport did while reconnecting after a Redis restart, before
``draconic/broker.py`` guarded it) would stop the whole platform. Each Procfile line runs its
command under this supervisor instead: a command that exits by itself is started again after
a pause that doubles from one second up to thirty (back to one once it has run for a minute),
and the log says so.

Stopping: the command runs in a session (and process group) of its own, and the supervisor
turns the first SIGTERM or SIGINT it gets into one SIGTERM to the command's main process only,
then exits with it, as honcho expects. honcho signals the supervisor's whole process group
(and Ctrl-C reaches a whole foreground group); a Celery worker's pool processes, which reset
SIGTERM to its default, would otherwise die with their jobs at once instead of the worker's
warm shutdown letting them finish (``workers.lifecycle``). A command still running
``DRACONIC_SHUTDOWN_GRACE_SECONDS`` plus STOP_SLACK seconds after that SIGTERM is killed with
its whole process group, so nothing of it outlives ``make run`` (``draconic.run_honcho``
waits that long and more before honcho kills anything).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from types import FrameType

from draconic.env import shutdown_grace_seconds

#: Pauses before a restart grow from FIRST_PAUSE to MAX_PAUSE seconds, doubling each time.
FIRST_PAUSE, MAX_PAUSE = 1.0, 30.0
#: A command that ran this long before it exited is restarted after the first pause again.
STEADY_SECONDS = 60.0
#: After the SIGTERM, a command gets the worker's grace plus this long before it is killed.
STOP_SLACK = 15.0


def stop_timeout() -> float:
    """How long a command may take to stop once it got SIGTERM."""
    return shutdown_grace_seconds() + STOP_SLACK


class Supervisor:
    def __init__(self, name: str, argv: list[str]) -> None:
        self.name, self.argv = name, argv
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = False
        self.stop_by = math.inf  # when a command told to stop is killed (monotonic)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        pause, restarts = FIRST_PAUSE, 0
        while True:
            started = time.monotonic()
            # Its own session: a signal to our process group does not reach the command's
            # processes, only the one SIGTERM that _stop forwards to its main process.
            self.child = subprocess.Popen(self.argv, start_new_session=True)  # noqa: S603
            if self.stopping:  # told to stop while it was being started
                self.child.send_signal(signal.SIGTERM)
            code = self._wait(self.child)
            if self.stopping:
                return code
            restarts += 1
            pause = FIRST_PAUSE if time.monotonic() - started >= STEADY_SECONDS else pause
            say(f"{self.name} exited with code {code}; restarting it in {pause:g}s", restarts)
            if self._sleep(pause):
                return code
            pause = min(pause * 2, MAX_PAUSE)

    def _wait(self, child: subprocess.Popen[bytes]) -> int:
        """The command's exit code; once it is told to stop, SIGKILL its process group if it
        is still running after ``stop_timeout()``."""
        while True:
            try:
                return child.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                if time.monotonic() < self.stop_by:
                    continue
            say(f"{self.name} did not stop within {stop_timeout():g}s of SIGTERM; killing it", 0)
            self.stop_by = math.inf
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)

    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` unless told to stop; True if told to stop."""
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.stopping

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM or SIGINT: forward one SIGTERM (a warm shutdown for Celery); ignore repeats
        (honcho, then Ctrl-C again) so that the command's grace period is not cut short."""
        if self.stopping:
            return
        self.stopping = True
        self.stop_by = time.monotonic() + stop_timeout()
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)


def say(message: str, restarts: int) -> None:
    """One JSON log line, the shape of every other process's."""
    line = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": "WARNING",
        "logger": "draconic.supervise",
        "message": message,
        "restarts": restarts,
    }
    print(json.dumps(line), file=sys.stderr, flush=True)  # noqa: T201


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m draconic.supervise NAME -- COMMAND...", file=sys.stderr)  # noqa: T201
        return 2
    return Supervisor(argv[0], argv[2:]).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
