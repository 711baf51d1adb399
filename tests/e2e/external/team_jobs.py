"""A job type of the team's Django project: it reads the project's settings and writes and
reads the project's own database (a user in its auth tables)."""

from __future__ import annotations

from typing import Any

from draconic_sdk import job_type


@job_type("ext.team_signup")
def team_signup(ctx: Any, username: str) -> dict[str, Any]:
    from django.conf import settings
    from django.contrib.auth.models import User

    User.objects.get_or_create(username=username)
    ctx.log("signed up", username=username)
    return {
        "users": sorted(User.objects.values_list("username", flat=True)),
        "settings": settings.TEAM_NAME,
        "database": str(settings.DATABASES["default"]["NAME"]),
    }
