"""The worker API of a Draconic server, as an external pool's worker calls it.

Each call is one POST with the pool's worker token. A 409 (``Stale``) means the attempt is
not running any more (superseded, settled): nothing was changed and the runtime drops it.
Connection errors and 5xx are retried a few times (every call is idempotent or fenced)."""

from __future__ import annotations

import time
from typing import Any

import httpx

RETRY_PAUSES = (0.2, 0.5, 1.0, 2.0, 4.0)


class WorkerApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        self.status, self.body = status, body
        super().__init__(f"worker API answered {status}: {body}")


class Stale(WorkerApiError):
    """409: the attempt is not running; a late result is refused and nothing changed."""


class WorkerApi:
    def __init__(self, url: str, token: str, *, timeout: float = 30.0) -> None:
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout
        self._client: httpx.Client | None = None

    @property
    def client(self) -> httpx.Client:
        # One client per process: a forked pool process must not share its parent's sockets.
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.url,
                timeout=self.timeout,
                headers={"Authorization": f"Worker {self.token}"},
            )
        return self._client

    def reset(self) -> None:
        """Forget the HTTP client (after a fork)."""
        self._client = None

    def post(self, path: str, body: dict[str, Any]) -> Any:
        for pause in (*RETRY_PAUSES, None):
            try:
                response = self.client.post(path, json=body)
            except httpx.TransportError:
                if pause is None:
                    raise
                time.sleep(pause)
                continue
            if response.status_code >= 500 and pause is not None:
                time.sleep(pause)
                continue
            return _answer(response)
        raise AssertionError("unreachable")  # pragma: no cover

    def register(self, *, pool: str, worker: str, concurrency: int, types: list[Any]) -> Any:
        body = {"pool": pool, "worker": worker, "concurrency": concurrency, "types": types}
        return self.post("/workers/pools/register", body)

    def heartbeat(self, *, pool: str, worker: str) -> Any:
        return self.post("/workers/pools/heartbeat", {"pool": pool, "worker": worker})

    def start(self, job_id: str, attempt: int, *, worker: str) -> Any:
        body = {"job_id": job_id, "attempt": attempt, "worker": worker}
        return self.post("/workers/attempts/start", body)

    def renew(self, job_id: str, attempt: int) -> Any:
        return self.post("/workers/attempts/renew", {"job_id": job_id, "attempt": attempt})

    def log(self, job_id: str, attempt: int, message: str, level: str, context: Any) -> Any:
        body = {"job_id": job_id, "attempt": attempt, "message": message, "level": level}
        return self.post("/workers/attempts/log", {**body, "context": context})

    def progress(self, job_id: str, attempt: int, progress: Any) -> Any:
        body = {"job_id": job_id, "attempt": attempt, "progress": progress}
        return self.post("/workers/attempts/progress", body)

    def parents(self, job_id: str, attempt: int) -> Any:
        return self.post("/workers/attempts/parents", {"job_id": job_id, "attempt": attempt})

    def complete(self, job_id: str, attempt: int, result: Any) -> Any:
        body = {"job_id": job_id, "attempt": attempt, "result": result}
        return self.post("/workers/attempts/complete", body)

    def fail(self, job_id: str, attempt: int, **outcome: Any) -> Any:
        return self.post(
            "/workers/attempts/fail", {"job_id": job_id, "attempt": attempt, **outcome}
        )

    def hand_back(self, job_id: str, attempt: int, *, worker: str) -> Any:
        """Give a running attempt back unfinished, uncharged: this worker is stopping."""
        body = {"job_id": job_id, "attempt": attempt, "worker": worker}
        return self.post("/workers/attempts/hand-back", body)


def _answer(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if response.status_code == 409:
        raise Stale(409, body)
    if response.status_code >= 400:
        raise WorkerApiError(response.status_code, body)
    return body
