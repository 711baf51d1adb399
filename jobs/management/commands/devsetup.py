"""``python manage.py devsetup``: the development superuser, its token, and where things are."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Create the development superuser `admin` if missing and print its token and the URLs."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--flower-port", type=int, default=5555)

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model().objects
        user = users.filter(username=options["username"]).first()
        # Not a password: the line that says where the password went.
        password_line = (
            "password: printed when it was created (reset: manage.py changepassword admin)"  # noqa: S105
        )
        created_with = None
        if user is None:
            created_with = secrets.token_urlsafe(12)
            user = users.create_superuser(options["username"], password=created_with)
            password_line = f"password: {created_with}   (shown once)"
        token, _ = Token.objects.get_or_create(user=user)
        flower_user, flower_password = _flower_credentials(user.get_username(), created_with)
        base = f"http://127.0.0.1:{options['port']}"
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "Draconic is starting. Development superuser:",
                    f"  user: {user.get_username()}   {password_line}",
                    f"  API token: {token.key}",
                    f"  try: curl -H 'Authorization: Token {token.key}' {base}/jobs/",
                    "",
                    f"  API        {base}/jobs/",
                    f"  API docs   {base}/api/docs/   (ReDoc: {base}/api/redoc/)",
                    f"  admin      {base}/admin/",
                    f"  health     {base}/admin/health",
                    f"  WebSocket  ws://127.0.0.1:{options['port']}/jobs/stream",
                    f"  Flower     http://127.0.0.1:{options['flower_port']}/   "
                    f"(user {flower_user}, password {flower_password})",
                    "",
                ]
            )
        )


#: Flower's development credentials: `make run` hands them to Flower as FLOWER_BASIC_AUTH.
FLOWER_AUTH_FILE = Path(settings.BASE_DIR) / "var" / "dev-flower-auth"


def _flower_credentials(username: str, created_with: str | None) -> tuple[str, str]:
    """The development superuser's name with the password it was just created with (or, for
    a superuser made before, one of Flower's own), kept in ``var/dev-flower-auth`` (mode 600)
    so that every `make run` gives Flower the same ones."""
    if FLOWER_AUTH_FILE.exists() and created_with is None:
        user, _, password = FLOWER_AUTH_FILE.read_text().strip().partition(":")
        if user == username and password:
            return user, password
    password = created_with or secrets.token_urlsafe(12)
    FLOWER_AUTH_FILE.parent.mkdir(parents=True, exist_ok=True)
    FLOWER_AUTH_FILE.touch(mode=0o600)
    FLOWER_AUTH_FILE.write_text(f"{username}:{password}\n")
    return username, password
