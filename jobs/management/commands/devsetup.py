"""``python manage.py devsetup``: the development superuser, its token, and where things are."""

from __future__ import annotations

import secrets
from typing import Any

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
        if user is None:
            password = secrets.token_urlsafe(12)
            user = users.create_superuser(options["username"], password=password)
            password_line = f"password: {password}   (shown once)"
        token, _ = Token.objects.get_or_create(user=user)
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
                    f"  Flower     http://127.0.0.1:{options['flower_port']}/",
                    "",
                ]
            )
        )
