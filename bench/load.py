"""A small HTTP load generator: N client threads, each with its own socket, sending a fixed
request and timing each response. Keep-alive is used when the server allows it (gunicorn's
sync workers close after every response, so clients then reconnect, as real clients would).

The generator shares the machine's cores with the server, so the platform and its baseline
are always driven by this same generator: their ratio is what matters.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LoadResult:
    """What one load run measured. ``latencies`` are seconds, one per completed request."""

    requests: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    last_body: bytes = b""
    cpu: float = 0.0  # CPU seconds the generator itself used (this process, all threads)

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0

    @property
    def ok(self) -> int:
        return sum(n for code, n in self.statuses.items() if 200 <= code < 300)

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile latency in milliseconds (nearest rank)."""
        return percentile(self.latencies, p) * 1000


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def build_request(method: str, port: int, path: str, token: str, body: Any) -> bytes:
    data = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Token {token}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


class _Client:
    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = b""

    def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buffer = b""
        self.sock.sendall(raw)
        while b"\r\n\r\n" not in self.buffer:
            self._recv()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        code = int(lines[0].split(b" ", 2)[1])
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines[1:])
        }
        length = int(headers.get(b"content-length", b"0"))
        self.buffer = rest
        while len(self.buffer) < length:
            self._recv()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()
        return code, body

    def _recv(self) -> None:
        assert self.sock is not None  # noqa: S101
        chunk = self.sock.recv(262144)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buffer += chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None


def run_load(
    port: int,
    raw: bytes,
    *,
    total: int,
    clients: int,
    progress: Callable[[int], None] | None = None,
) -> LoadResult:
    """Send ``raw`` ``total`` times from ``clients`` concurrent connections."""
    result = LoadResult()
    counter = itertools.count()
    lock = threading.Lock()

    def worker() -> None:
        client = _Client(port)
        latencies: list[float] = []
        statuses: Counter[int] = Counter()
        errors = 0
        body = b""
        while next(counter) < total:
            started = time.perf_counter()
            try:
                code, body = client.request(raw)
            except OSError:
                client.close()
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)
            statuses[code] += 1
        client.close()
        with lock:
            result.latencies += latencies
            result.statuses.update(statuses)
            result.errors += errors
            result.last_body = body or result.last_body

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    started, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    while alive := [t for t in threads if t.is_alive()]:
        alive[0].join(2.0)
        if progress is not None:
            progress(min(total, _peek(counter)))
    result.elapsed = time.perf_counter() - started
    result.cpu = time.process_time() - cpu
    result.requests = len(result.latencies)
    return result


def _peek(counter: itertools.count[int]) -> int:
    """The counter's next value without consuming it (its repr is ``count(N)``)."""
    return int(repr(counter)[6:-1])
