"""What every folder shares: the factories plugin and the users and API clients.

The folders are by cost (see the README): ``unit`` needs neither PostgreSQL nor Redis,
``integration`` uses both (pytest-django's test database and Redis database 15 by default, see
tests/settings.py), ``e2e`` also starts real worker, scheduler and server processes
(``tests.harness``), and ``chaos`` is the fault-injection run. The fixtures below touch the
database only when a test asks for them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytest_plugins = ["tests.factories"]

#: Every process a test starts imports this tree's draconic_sdk (the server imports its
#: job-type core), whatever copy the environment's editable install points at.
_SDK_SRC = str(Path(__file__).resolve().parent.parent / "sdk" / "src")
os.environ["PYTHONPATH"] = os.pathsep.join(
    dict.fromkeys(p for p in [_SDK_SRC, *os.environ.get("PYTHONPATH", "").split(os.pathsep)] if p)
)


def _client_for(user: Any) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    client.user = user  # type: ignore[attr-defined]
    return client


@pytest.fixture
def user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("alice", password="alice-password")


@pytest.fixture
def other_user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("bob", password="bob-password")


@pytest.fixture
def staff_user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("operator", password="op-password", is_staff=True)


@pytest.fixture
def api(user: Any) -> APIClient:
    """An API client authenticated by token as ``user``."""
    return _client_for(user)


@pytest.fixture
def other_api(other_user: Any) -> APIClient:
    return _client_for(other_user)


@pytest.fixture
def staff_api(staff_user: Any) -> APIClient:
    return _client_for(staff_user)


@pytest.fixture
def anon_api() -> APIClient:
    return APIClient()


@pytest.fixture
def viewer_user(django_user_model: Any) -> Any:
    """An on-call viewer: not staff, holds ``admin_api.view_everything`` (sees all, acts none)."""
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", password="viewer-password")
    viewer.user_permissions.add(Permission.objects.get(codename="view_everything"))
    return django_user_model.objects.get(pk=viewer.pk)  # a fresh object: no cached perms


@pytest.fixture
def staff_viewer_user(django_user_model: Any) -> Any:
    """A read-only staff user: staff, and holds ``admin_api.view_everything``, which makes
    anyone read-only (sees all, acts none), staff or not."""
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user(
        "staff-viewer", password="staff-viewer-password", is_staff=True
    )
    viewer.user_permissions.add(Permission.objects.get(codename="view_everything"))
    return django_user_model.objects.get(pk=viewer.pk)
