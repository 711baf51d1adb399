"""``draconic.supervise``, the supervisor of each ``make run`` process, with real child
processes: a command that dies is started again and the log says so; SIGTERM stops it for
good. Hang guards only; no durations asserted."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from draconic import run_honcho
from draconic.supervise import STOP_SLACK, stop_timeout
from tests.harness import ROOT, wait_until


def supervise(name: str, code: str, *, session: bool = False) -> subprocess.Popen[str]:
    """The supervisor of ``python -c code``; with ``session``, in a session of its own (the
    process group of its own that honcho gives each Procfile line)."""
    return subprocess.Popen(
        [sys.executable, "-m", "draconic.supervise", name, "--", sys.executable, "-c", code],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=session,
    )


def test_a_command_that_dies_is_restarted_and_the_log_says_so(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    # Each run leaves a line; the first two crash, the third stays up until stopped.
    code = (
        "import pathlib, sys, time\n"
        f"p = pathlib.Path({str(runs)!r}); p.open('a').write('run\\n')\n"
        "n = len(p.read_text().splitlines())\n"
        "sys.exit(3) if n < 3 else time.sleep(600)\n"
    )
    proc = supervise("worker", code)
    try:
        wait_until(lambda: runs.exists() and len(runs.read_text().splitlines()) == 3, timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert [line["message"] for line in lines] == [
        "worker exited with code 3; restarting it in 1s",
        "worker exited with code 3; restarting it in 2s",
    ]
    assert [line["restarts"] for line in lines] == [1, 2]
    assert len(runs.read_text().splitlines()) == 3  # not started again after SIGTERM


def test_sigterm_stops_the_command_and_the_supervisor_exits_with_it() -> None:
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))\n"
        "print('up', flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = supervise("web", code)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "up"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 7
    assert "restarting" not in (proc.stderr.read() if proc.stderr else "")


def test_it_explains_how_to_call_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "draconic.supervise", "web"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "usage: python -m draconic.supervise NAME -- COMMAND" in done.stderr


def test_a_signal_to_its_process_group_reaches_the_command_as_one_sigterm_only(
    tmp_path: Path,
) -> None:
    """honcho signals the supervisor's whole process group, and Ctrl-C a whole foreground
    group; a Celery worker's pool processes must not get that signal (they would die with their
    jobs), only the worker's main process, and once: a warm shutdown."""
    got = tmp_path / "signals"
    code = (
        "import os, pathlib, signal, sys, time\n"
        f"p = pathlib.Path({str(got)!r})\n"
        "def note(signum, frame):\n"
        "    p.open('a').write(signal.Signals(signum).name + '\\n')\n"
        "signal.signal(signal.SIGTERM, note)\n"
        "signal.signal(signal.SIGINT, note)\n"
        "print(os.getpgid(0), os.getsid(0), flush=True)\n"
        "while 'SIGTERM' not in (p.read_text() if p.exists() else ''):\n"
        "    time.sleep(0.05)\n"
        "time.sleep(1)\n"  # a second signal to the group would arrive meanwhile
        "sys.exit(0)\n"
    )
    proc = supervise("worker", code, session=True)
    assert proc.stdout is not None
    pgid, sid = (int(n) for n in proc.stdout.readline().split())
    try:
        assert proc.pid not in (pgid, sid)  # the command is in a session of its own
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        wait_until(lambda: got.exists() and "SIGTERM" in got.read_text(), timeout=30)
        os.killpg(proc.pid, signal.SIGTERM)  # then honcho
        assert proc.wait(timeout=30) == 0
        assert got.read_text().splitlines() == ["SIGTERM"]
    finally:  # nothing left behind when it fails
        for group in {proc.pid, pgid}:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)


def test_a_command_that_ignores_sigterm_is_killed_with_its_group_after_the_stop_timeout() -> None:
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('up', flush=True)\n"
        "time.sleep(600)\n"
    )
    env = {**os.environ, "DRACONIC_SHUTDOWN_GRACE_SECONDS": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "draconic.supervise", "web", "--", sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) != 0  # the command died of the SIGKILL
    err = proc.stderr.read() if proc.stderr else ""
    assert f"web did not stop within {STOP_SLACK:g}s of SIGTERM; killing it" in err


def test_make_runs_honcho_waits_for_the_supervisors_before_it_kills(tmp_path: Path) -> None:
    """Stock honcho SIGKILLs what still runs 5 s after the first process stopped; under
    draconic.run_honcho a process that takes longer to stop (a worker's grace) is not killed."""
    done, ready = tmp_path / "done", tmp_path / "ready"
    slow = (
        f"trap 'sleep 7; echo done > {done}; exit 0' TERM; touch {ready}; "
        "while true; do sleep 0.1; done"
    )
    # quick ends (and honcho stops everything) only once slow has its trap: a SIGTERM before
    # that would kill the shell at once, however honcho waits.
    # (At most 60 s, so a failing run leaves no loop behind.)
    quick = f"for _ in $(seq 600); do [ -e {ready} ] && break; sleep 0.1; done; sleep 1"
    (tmp_path / "Procfile").write_text(f"quick: {quick}\nslow: {slow}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "draconic.run_honcho", "-e", "/dev/null", "start"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.exists(), proc.stdout
    assert "sending SIGKILL" not in proc.stdout
    assert run_honcho.kill_wait() > stop_timeout() > 0


#: A server for ``--listen``: answers each connection with its pid on the socket it was given.
SERVE_FD = (
    "import os, socket, sys\n"
    "sock = socket.socket(fileno=int(sys.argv[1]))\n"
    "while True:\n"
    "    conn, _ = sock.accept()\n"
    "    conn.sendall(str(os.getpid()).encode())\n"
    "    conn.close()\n"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answer(port: int) -> int | None:
    """The pid of the copy that answered a connection to ``port``, None if none did."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            return int(conn.recv(64).decode())
    except (OSError, ValueError):
        return None


def test_listen_serves_one_port_from_every_copy_and_restarts_one_that_dies() -> None:
    port = _free_port()
    argv = [sys.executable, "-m", "draconic.supervise", "web", "--listen", f"127.0.0.1:{port}"]
    argv += ["--processes", "2", "--", sys.executable, "-c", SERVE_FD, "{fd}"]
    proc = subprocess.Popen(argv, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        seen: set[int] = set()
        # Both copies answer on the one port (the kernel spreads connections over them).
        wait_until(lambda: seen.add(_answer(port) or 0) or len(seen - {0}) == 2, timeout=60)
        first, second = sorted(seen - {0})
        os.kill(first, signal.SIGKILL)
        # The port keeps answering while the dead copy is restarted: from a new process.
        wait_until(lambda: _answer(port) not in (None, first, second), timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode is not None
    lines = [json.loads(line)["message"] for line in err.splitlines() if line.startswith("{")]
    assert len(lines) == 1 and lines[0].endswith("exited with code -9; restarting it in 1s")
    assert lines[0].startswith(("web[1] ", "web[2] "))
    assert _answer(port) is None, "the copies and the sockets are gone after SIGTERM"


def test_a_copy_started_while_the_stop_signal_was_handled_still_gets_its_sigterm(
    monkeypatch: Any,
) -> None:
    """The signal can come between _tend's look at ``stopping`` and its storing the new child:
    _stop then saw no child to tell. That copy must get its SIGTERM too, not the SIGKILL at
    the stop timeout (a worker killed so loses its warm shutdown)."""
    from draconic import supervise as module

    monkeypatch.setenv("DRACONIC_SHUTDOWN_GRACE_SECONDS", "0")
    monkeypatch.setattr(module, "STOP_SLACK", 1.0)
    monkeypatch.setattr(module.signal, "signal", lambda *_: None)  # leave pytest's handlers
    sup = module.Supervisor("web", [sys.executable, "-c", "import time; time.sleep(60)"])
    sup._stop(signal.SIGTERM, None)  # the signal, while the copy had no child yet
    (copy,) = sup.copies
    copy.child = sup._spawn(None)  # the spawn the signal interrupted completes
    assert sup.run() == -signal.SIGTERM
