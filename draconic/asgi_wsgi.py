"""Django's WSGI handler, served over ASGI: how daphne serves HTTP (``draconic.asgi``).

Django's own ASGI handler runs each request's sync code (all our views are sync) in a thread
made for that request, so a database connection cannot outlive its request: every request
opened a new PostgreSQL session (a backend forked, authenticated, and the engine's statements
prepared again). That cost PostgreSQL about 4.5 ms of CPU per submit and held ``make run``
to a fifth of gunicorn's rate (docs/performance.md). Here the WSGI application runs in the
event loop's default thread pool instead: a few long-lived threads (asyncio's default, at
most the core count + 4), each keeping its own connection (``DB_CONN_MAX_AGE``), recycled by
Django's request signals as under gunicorn. So a process holds at most that many
connections, and while one request waits for PostgreSQL or Redis another runs.
``draconic.supervise --processes`` runs several such processes on one port.

The response is sent from the event loop, never from a worker thread (asgiref's
``WsgiToAsgi`` sends from the thread, which breaks once requests overlap: "CurrentThreadExecutor
already quit"), and it is always closed: closing it sends ``request_finished`` and closes a
``FileResponse``'s file. A streamed response is read one chunk per hop to the pool, so a
large export is never held in memory whole.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from tempfile import SpooledTemporaryFile
from typing import IO, Any, TypeVar

from asgiref.sync import sync_to_async

T = TypeVar("T")
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
#: A request body up to this size is kept in memory, a larger one in a temporary file.
SPOOL_BYTES = 65536


class _Response:
    """One WSGI response: what ``start_response`` was given and the body iterable."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: Iterable[bytes] = ()
        self.chunks: Iterator[bytes] = iter(())

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        self.status = int(status.split(" ", 1)[0])
        self.headers = [(k.lower().encode("latin1"), v.encode("latin1")) for k, v in headers]
        return self._write_unsupported

    @staticmethod
    def _write_unsupported(data: bytes) -> None:
        raise NotImplementedError("the WSGI write() callable is not supported")

    def run(self, app: WSGIApp, environ: dict[str, Any]) -> bytes | None:
        """Call the application; the whole body (then closed) unless it is streamed."""
        self.body = app(environ, self.start_response)
        if getattr(self.body, "streaming", False):
            self.chunks = iter(self.body)
            return None
        try:
            return b"".join(self.body)
        finally:
            self.close()

    def next_chunk(self) -> bytes | None:
        return next(self.chunks, None)

    def close(self) -> None:
        close = getattr(self.body, "close", None)
        if close is not None:
            close()


class WsgiHttp:
    """The ASGI ``http`` application for a WSGI application (``draconic.wsgi``'s)."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        with SpooledTemporaryFile(max_size=SPOOL_BYTES) as body:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body.write(message.get("body", b""))
                if not message.get("more_body"):
                    break
            body.seek(0)
            response = _Response()
            whole = await _in_pool(response.run, self.app, environ(scope, body))
        start = {"type": "http.response.start", "status": response.status}
        await send({**start, "headers": response.headers})
        if whole is not None:
            await send({"type": "http.response.body", "body": whole})
            return
        try:
            while (chunk := await _in_pool(response.next_chunk)) is not None:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body"})
        finally:
            await _in_pool(response.close)


async def _in_pool(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in the loop's default thread pool. Through asgiref, so the context
    variables go along and sync code there can call ``async_to_sync`` back into this loop."""
    return await sync_to_async(func, thread_sensitive=False)(*args)


def environ(scope: dict[str, Any], body: IO[bytes]) -> dict[str, Any]:
    """The WSGI environ of an ASGI HTTP scope (PEP 3333; headers joined as a proxy would)."""
    script_name = scope.get("root_path", "").encode().decode("latin1")
    path = scope["path"].encode().decode("latin1")
    server = scope.get("server") or ("localhost", 80)
    env: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path[len(script_name) :] if path.startswith(script_name) else path,
        "QUERY_STRING": scope["query_string"].decode("latin1"),
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1] or 0),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if scope.get("client"):
        env["REMOTE_ADDR"] = scope["client"][0]
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin1").upper().replace("-", "_")
        if name not in ("CONTENT_LENGTH", "CONTENT_TYPE"):
            name = f"HTTP_{name}"
        value = raw_value.decode("latin1")
        env[name] = f"{env[name]},{value}" if name in env else value
    return env
