"""``python manage.py createapitoken USERNAME [--staff]``: prints the user's API token only."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Create the user if missing and print its API token (and nothing else)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("--staff", action="store_true", help="make the user staff")
        parser.add_argument("--superuser", action="store_true", help="make the user a superuser")

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"].strip()
        if not username or len(username) > 150:
            raise CommandError("USERNAME must be 1 to 150 characters")
        # A created user logs in by token only: no password, not even an empty one.
        user, _ = get_user_model().objects.get_or_create(
            username=username, defaults={"password": make_password(None)}
        )
        changed = False
        if options["staff"] and not user.is_staff:
            user.is_staff = changed = True
        if options["superuser"] and not user.is_superuser:
            user.is_staff = user.is_superuser = changed = True
        if changed:
            user.save(update_fields=["is_staff", "is_superuser"])
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(token.key)
