"""Template tags of the operator pages that other pages include: the paused banner (the
dashboard index and the jobs page show what is paused; one query)."""

from __future__ import annotations

from typing import Any

from django import template

from jobs.models import Pause

register = template.Library()


@register.inclusion_tag("dashboard/_paused_banner.html")
def paused_banner() -> dict[str, Any]:
    return {"pauses": list(Pause.objects.order_by("id"))}
