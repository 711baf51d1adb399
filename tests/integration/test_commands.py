"""``manage.py createapitoken USERNAME [--staff]``: prints only the token, creates the user if
missing, and gives the same token every time."""

from __future__ import annotations

import re
import subprocess
import sys
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.harness import ROOT, process_env

pytestmark = pytest.mark.django_db

TOKEN_LINE = re.compile(r"\A[0-9a-f]{40}\n\Z")


def create_token(*args: str) -> str:
    out, err = StringIO(), StringIO()
    call_command("createapitoken", *args, stdout=out, stderr=err)
    assert err.getvalue() == ""
    return out.getvalue()


def test_it_creates_the_user_and_prints_only_its_token() -> None:
    output = create_token("carol")
    assert TOKEN_LINE.match(output), repr(output)
    user = get_user_model().objects.get(username="carol")
    assert Token.objects.get(user=user).key == output.strip()
    assert not user.is_staff
    assert not user.has_usable_password()


def test_it_is_idempotent() -> None:
    first, second = create_token("carol"), create_token("carol")
    assert first == second
    assert get_user_model().objects.filter(username="carol").count() == 1
    assert Token.objects.count() == 1


def test_it_prints_the_token_of_an_existing_user(user: Any) -> None:
    existing, _ = Token.objects.get_or_create(user=user)
    assert create_token(user.username) == existing.key + "\n"


def test_staff_makes_the_user_staff_and_repeating_without_it_keeps_it() -> None:
    token = create_token("ops", "--staff")
    assert TOKEN_LINE.match(token)
    assert get_user_model().objects.get(username="ops").is_staff
    assert create_token("ops") == token
    assert get_user_model().objects.get(username="ops").is_staff


def test_staff_promotes_an_existing_user(user: Any) -> None:
    create_token(user.username, "--staff")
    user.refresh_from_db()
    assert user.is_staff and not user.is_superuser


def test_the_printed_token_authenticates_against_the_api() -> None:
    token = create_token("dave", "--staff").strip()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/jobs/").status_code == 200
    assert client.get("/admin/dlq/").status_code == 200


def test_without_staff_the_token_is_refused_by_the_admin_api() -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {create_token('erin').strip()}")
    assert client.get("/jobs/").status_code == 200
    assert client.get("/admin/dlq/").status_code == 403


@pytest.mark.parametrize("username", ["", "   ", "x" * 151])
def test_a_bad_username_is_a_command_error(username: str) -> None:
    with pytest.raises(CommandError, match="USERNAME"):
        call_command("createapitoken", username, stdout=StringIO())
    assert get_user_model().objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_run_from_the_shell_stdout_holds_the_token_and_nothing_else() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "createapitoken", "frank", "--staff"],
        cwd=ROOT,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert TOKEN_LINE.match(result.stdout), repr(result.stdout)
    user = get_user_model().objects.get(username="frank")
    assert user.is_staff
    assert Token.objects.get(user=user).key == result.stdout.strip()
