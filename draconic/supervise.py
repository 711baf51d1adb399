"""``python -m draconic.supervise NAME [--listen HOST:PORT] [--processes N] -- COMMAND...``:
keep the processes of one ``make run`` line alive.

honcho stops every process of the Procfile when one of them exits, so one crashed worker
(as kombu 5.7's Redis transport did while reconnecting after a Redis restart, before
``draconic/broker.py`` guarded it) would stop the whole platform. Each Procfile line runs its
command under this supervisor instead: a command that exits by itself is started again after
a pause that doubles from one second up to thirty (back to one once it has run for a minute),
and the log says so.

Stopping: each command runs in a session (and process group) of its own, and the supervisor
turns the first SIGTERM or SIGINT it gets into one SIGTERM to each command's main process
only, then exits with them, as honcho expects. honcho signals the supervisor's whole process
group (and Ctrl-C reaches a whole foreground group); a Celery worker's pool processes, which
reset SIGTERM to its default, would otherwise die with their jobs at once instead of the
worker's warm shutdown letting them finish (``workers.lifecycle``). A command still running
``DRACONIC_SHUTDOWN_GRACE_SECONDS`` plus STOP_SLACK seconds after that SIGTERM is killed with
its whole process group, so nothing of it outlives ``make run`` (``draconic.run_honcho``
waits that long and more before honcho kills anything).

``--listen HOST:PORT`` opens the listening sockets here, one per copy, all on that port
(``SO_REUSEPORT``), and hands each copy its own (``{fd}`` in the command is its file
descriptor: ``daphne --fd {fd}``); ``--processes`` runs that many copies (``auto``: one per
core). So ``make run`` serves REST and the WebSocket on one port from several daphne
processes (one Python process uses one core). One socket per copy, not one shared socket:
the kernel then spreads new connections evenly over the copies, where on a shared socket
the first copy to wake up accepts a whole burst of keep-alive connections and the others
idle. A socket outlives the copy that serves it, so connections that arrive while a copy
restarts wait in its backlog instead of being refused.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType

from draconic.env import shutdown_grace_seconds

#: Pauses before a restart grow from FIRST_PAUSE to MAX_PAUSE seconds, doubling each time.
FIRST_PAUSE, MAX_PAUSE = 1.0, 30.0
#: A command that ran this long before it exited is restarted after the first pause again.
STEADY_SECONDS = 60.0
#: How often the supervisor looks at its children.
TICK = 0.05
#: After the SIGTERM, a command gets the worker's grace plus this long before it is killed.
STOP_SLACK = 15.0


def stop_timeout() -> float:
    """How long a command may take to stop once it got SIGTERM."""
    return shutdown_grace_seconds() + STOP_SLACK


@dataclass
class _Copy:
    """One copy of the command: its process, and when and after what pause it restarts."""

    label: str
    sock: socket.socket | None = None
    child: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    pause: float = FIRST_PAUSE
    restarts: int = 0
    due: float = 0.0  # monotonic time of the next start while ``child`` is None
    told: bool = False  # whether ``child`` got its SIGTERM


class Supervisor:
    def __init__(
        self, name: str, argv: list[str], *, processes: int = 1, address: str | None = None
    ) -> None:
        self.argv = argv
        labels = [name] if processes == 1 else [f"{name}[{i}]" for i in range(1, processes + 1)]
        self.copies = [_Copy(label, listen(address) if address else None) for label in labels]
        self.stopping = False
        self.stop_by = math.inf  # when commands told to stop are killed (monotonic)
        self.code = 0

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        while not self.stopping:
            for copy in self.copies:
                self._tend(copy)
            time.sleep(TICK)
        # A copy started while the signal was handled got no SIGTERM from ``_stop``.
        self._tell_all()
        codes = [self._wait(c.child, c.label) for c in self.copies if c.child is not None]
        if not codes:
            return self.code  # stopped while every copy was waiting for its restart
        return next((code for code in codes if code != 0), 0)  # any copy's failure shows

    def _wait(self, child: subprocess.Popen[bytes], label: str) -> int:
        """A stopping copy's exit code; SIGKILL its process group if it is still running
        ``stop_timeout()`` after the SIGTERM."""
        while True:
            try:
                return child.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                if time.monotonic() < self.stop_by:
                    continue
            say(f"{label} did not stop within {stop_timeout():g}s of SIGTERM; killing it", 0)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
            return child.wait()

    def _tend(self, copy: _Copy) -> None:
        """Start a copy that is due; note one that exited and set when it starts again."""
        now = time.monotonic()
        if copy.child is None:
            if now >= copy.due and not self.stopping:
                copy.child, copy.started = self._spawn(copy.sock), now
            return
        code = copy.child.poll()
        if code is None or self.stopping:
            return
        self.code, copy.child = code, None
        copy.restarts += 1
        copy.pause = FIRST_PAUSE if now - copy.started >= STEADY_SECONDS else copy.pause
        say(
            f"{copy.label} exited with code {code}; restarting it in {copy.pause:g}s", copy.restarts
        )
        copy.due = now + copy.pause
        copy.pause = min(copy.pause * 2, MAX_PAUSE)

    def _spawn(self, sock: socket.socket | None) -> subprocess.Popen[bytes]:
        # Its own session: a signal to our process group does not reach the command's
        # processes, only the one SIGTERM that _stop forwards to its main process.
        if sock is None:
            return subprocess.Popen(self.argv, start_new_session=True)  # noqa: S603
        fd = sock.fileno()
        argv = [arg.replace("{fd}", str(fd)) for arg in self.argv]
        return subprocess.Popen(argv, pass_fds=(fd,), start_new_session=True)  # noqa: S603

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM or SIGINT: forward one SIGTERM (a warm shutdown for Celery); ignore repeats
        (honcho, then Ctrl-C again) so that the command's grace period is not cut short."""
        if self.stopping:
            return
        self.stopping = True
        self.stop_by = time.monotonic() + stop_timeout()
        self._tell_all()

    def _tell_all(self) -> None:
        """Send each running copy its one SIGTERM (never a second)."""
        for copy in self.copies:
            if copy.child is not None and not copy.told and copy.child.poll() is None:
                copy.told = True
                copy.child.send_signal(signal.SIGTERM)


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


def listen(address: str) -> socket.socket:
    """A TCP socket listening on ``HOST:PORT`` (``[::1]:8000`` for IPv6), inheritable, that
    shares the port with the other copies' sockets."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, int(port)))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _processes(text: str) -> int:
    count = (os.cpu_count() or 1) if text == "auto" else int(text)
    if count < 1:
        raise argparse.ArgumentTypeError("must be at least 1, or auto")
    return count


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print("usage: python -m draconic.supervise NAME -- COMMAND...", file=sys.stderr)  # noqa: T201
        return 2
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="python -m draconic.supervise")
    parser.add_argument("name")
    parser.add_argument(
        "--listen", metavar="HOST:PORT", help="a socket on this port for each copy: {fd}"
    )
    parser.add_argument("--processes", type=_processes, default=1, help="copies, or auto")
    ns = parser.parse_args(argv[:split])
    supervisor = Supervisor(ns.name, argv[split + 1 :], processes=ns.processes, address=ns.listen)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
