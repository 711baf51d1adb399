"""Where the client finds the server and its token: arguments first, then the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_URL = "http://127.0.0.1:8000"
#: Told to whoever has no token (the CLI prints it; AuthenticationError carries it).
HOW_TO_AUTHENTICATE = (
    "set DRACONIC_TOKEN (or pass --token): `make run` prints the development superuser's "
    "token; for any user, run `python manage.py createapitoken USERNAME` on the server "
    "(`docker compose exec api python manage.py createapitoken USERNAME` under compose)"
)


@dataclass(frozen=True)
class Settings:
    url: str
    token: str | None
    timeout: float = 30.0
    retries: int = 3
    max_retry_wait: float = 60.0

    @property
    def ws_url(self) -> str:
        """The WebSocket feed's URL (``ws://`` for ``http://``, ``wss://`` for ``https://``)."""
        scheme, _, rest = self.url.partition("://")
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/jobs/stream"


def settings(
    url: str | None = None,
    token: str | None = None,
    *,
    timeout: float = 30.0,
    retries: int = 3,
    max_retry_wait: float = 60.0,
) -> Settings:
    """The client's settings: ``url`` or ``DRACONIC_URL`` (default ``http://127.0.0.1:8000``),
    ``token`` or ``DRACONIC_TOKEN`` (None: calls that need one fail with AuthenticationError)."""
    base = (url or os.environ.get("DRACONIC_URL") or DEFAULT_URL).rstrip("/")
    if "://" not in base:
        raise ValueError(f"DRACONIC_URL must start with http:// or https://, not {base!r}")
    return Settings(
        url=base,
        token=token or os.environ.get("DRACONIC_TOKEN") or None,
        timeout=timeout,
        retries=retries,
        max_retry_wait=max_retry_wait,
    )
