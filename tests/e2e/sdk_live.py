"""The live platform the SDK's end-to-end tests talk to: daphne (REST and WebSocket), a
worker and a scheduler from ``tests.harness``, a user and a staff user with API tokens.
The client under test reaches it only over HTTP and WebSocket, as a user's program would."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from rest_framework.authtoken.models import Token

from tests.harness import Supervisor


@dataclass
class Live:
    platform: Supervisor
    url: str
    token: str
    staff_token: str

    def env(self, token: str | None = None) -> dict[str, str]:
        """The environment a program using the SDK would run with."""
        return {"DRACONIC_URL": self.url, "DRACONIC_TOKEN": token or self.token}


def start_live(platform: Supervisor, user: Any, staff_user: Any, *, worker: bool = True) -> Live:
    url = platform.start_web()
    if worker:
        platform.start_worker()
        platform.start_scheduler()
    token, _ = Token.objects.get_or_create(user=user)
    staff, _ = Token.objects.get_or_create(user=staff_user)
    return Live(platform=platform, url=url, token=token.key, staff_token=staff.key)


@pytest.fixture
def live(platform: Supervisor, user: Any, staff_user: Any) -> Live:
    """The whole platform (web, worker, scheduler) and two tokens."""
    return start_live(platform, user, staff_user)
