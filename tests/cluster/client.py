"""The cluster's clients, outside every host: a submitter that POSTs each planned job through
the balancer with an idempotency key (retrying the same request on any connection error or
5xx until it is answered), and a WebSocket feed client on ``/jobs/stream`` through the
balancer that resumes from its last cursor after a disconnect and records every job's
terminal event."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tests.chaos.plan import TERMINAL, Planned

#: The plan's jobs last 0-200 ms; five times that keeps jobs running when a fault strikes.
MS_SCALE = 5
TENANTS = 3  # jobs of every fourth shape carry concurrency_key tenant:<n>, limited to 2 at once


def job_request(planned: Planned, parents: list[str], index: int, run_id: str) -> dict[str, Any]:
    """The body of ``POST /jobs/`` for one planned job. Half the flaky jobs use the ``fail``
    diagnostic type (fails attempt 1, then succeeds; it keeps no run log)."""
    body: dict[str, Any] = {
        "type": f"chaos_{planned.kind}",
        "priority": planned.priority,
        "payload": {"ms": planned.ms * MS_SCALE},
        "resource_requirements": {"cpu_units": planned.cpu, "memory_mb": planned.mem},
        "max_attempts": 8,
        "depends_on": parents,
        "idempotency_key": f"{run_id}-{planned.key}",
    }
    if planned.kind == "flaky" and index % 2 == 0:
        body["type"] = "fail"
        body["payload"] = {"fail_attempts": 1, "seconds": planned.ms * MS_SCALE / 1000}
    if index % 4 == 0:
        body["concurrency_key"] = f"tenant:{index % TENANTS}"
    return body


class Refused(RuntimeError):
    """A 4xx answer: the request itself was refused (sending it again would not help)."""

    def __init__(self, path: str, status: int, body: bytes) -> None:
        super().__init__(f"{path} answered {status}: {body[:500]!r}")
        self.status, self.body = status, body


#: The refusal of a job whose parent has already failed: its expected outcome was cancelled.
NEVER_COMPLETE = b"will never complete"


@dataclass
class Submitter:
    base: str  # http://lb:port
    token: str
    run_id: str
    ids: dict[str, str] = field(default_factory=dict)  # plan key -> job id
    fail_ids: set[str] = field(default_factory=set)
    answers: Counter[int] = field(default_factory=Counter)
    retries: int = 0
    in_flight: int = 0  # requests being sent now (the api kill waits for one)
    refused: list[str] = field(default_factory=list)  # plan keys refused: a parent had failed

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` until it is answered with a 2xx; the same body every time."""
        data = json.dumps(body).encode()
        self.in_flight += 1
        try:
            return self._post(path, data)
        finally:
            self.in_flight -= 1

    def _post(self, path: str, data: bytes) -> dict[str, Any]:
        while True:
            request = urllib.request.Request(  # noqa: S310  (the balancer of our test network)
                self.base + path,
                data=data,
                method="POST",
                headers={
                    "Authorization": f"Token {self.token}",
                    "Content-Type": "application/json",
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
                    self.answers[response.status] += 1
                    return dict(json.loads(response.read()))
            except urllib.error.HTTPError as exc:
                self.answers[exc.code] += 1
                if exc.code < 500:
                    raise Refused(path, exc.code, exc.read()) from exc
            except (OSError, ValueError):
                pass  # connection refused/reset, timeout, a torn answer: send it again
            self.retries += 1
            time.sleep(0.2)

    def submit_shape(self, members: list[tuple[int, Planned]]) -> None:
        for index, planned in members:  # parents come first inside a shape
            if any(p in self.refused for p in planned.parents):
                self.refused.append(planned.key)
                continue
            body = job_request(planned, [self.ids[p] for p in planned.parents], index, self.run_id)
            try:
                job_id = str(self.post("/jobs/", body)["id"])
            except Refused as exc:
                # One at a time, a child can come after its parent has already failed for good
                # (a batch would have been atomic, but batches take no idempotency keys).
                if exc.status != 400 or NEVER_COMPLETE not in exc.body:
                    raise
                self.refused.append(planned.key)
                continue
            if body["type"] == "fail":
                self.fail_ids.add(job_id)
            self.ids[planned.key] = job_id

    def submit_batch(self, batch: list[Planned], first: int, threads: int = 4) -> None:
        shapes: list[list[tuple[int, Planned]]] = []
        for offset, planned in enumerate(batch):
            if planned.starts_shape or not shapes:
                shapes.append([])
            shapes[-1].append((first + offset, planned))
        with ThreadPoolExecutor(threads) as pool:
            for done in [pool.submit(self.submit_shape, shape) for shape in shapes]:
                done.result()


@dataclass
class Feed:
    """Follows ``/jobs/stream`` in a thread; ``terminal`` maps job id -> terminal status."""

    url: str  # ws://lb:port/jobs/stream?token=...
    terminal: dict[str, str] = field(default_factory=dict)
    cursor: int = 0
    connects: int = 0
    events: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._follow, name="feed", daemon=True)
        thread.start()
        return thread

    def _follow(self) -> None:
        from websockets.sync.client import connect

        while not self.stop.is_set():
            url = self.url + (f"&since={self.cursor}" if self.cursor else "")
            try:
                with connect(url, open_timeout=5, close_timeout=1) as socket:
                    self.connects += 1
                    while not self.stop.is_set():
                        try:
                            raw = socket.recv(timeout=1)
                        except TimeoutError:
                            continue
                        self._handle(json.loads(raw))
            except Exception:
                time.sleep(0.3)

    def _handle(self, event: dict[str, Any]) -> None:
        if event.get("type") != "job_update":
            return
        self.events += 1
        self.cursor = max(self.cursor, int(event["cursor"]))
        if event["status"] in TERMINAL:
            self.terminal[event["job_id"]] = event["status"]

    def missing(self, ids: dict[str, str]) -> list[str]:
        return [job_id for job_id in ids.values() if job_id not in self.terminal]
