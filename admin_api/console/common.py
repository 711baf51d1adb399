"""What the console's operator pages share: who may open them, who may act, and the
confirm-then-act shape of every action.

An action is a POST (CSRF-checked by Django's middleware). The first POST only counts what
it would touch and answers a confirmation page that says how many; that page's button posts
the same fields again with ``confirm`` set to the count it showed, and only that POST acts,
on at most that many, and answers what it did.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from admin_api import access

View = Callable[..., HttpResponse]


def operator_page(view: View) -> View:
    """Operators and on-call viewers may open the page; everyone else gets a 403."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not access.sees_everything(request.user):
            return forbidden("only operators and on-call viewers may see this page")
        return view(request, *args, **kwargs)

    return wrapped


def operator_action(view: View) -> View:
    """Only operators may act (``access.may_operate``); a viewer or anyone else gets a 403.
    POST only."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            return JsonResponse({"detail": "POST only"}, status=405)
        if not access.may_operate(request.user):
            return forbidden("only operators may do this")
        return view(request, *args, **kwargs)

    return wrapped


def forbidden(detail: str) -> HttpResponse:
    return JsonResponse({"detail": detail}, status=403)


def bad_request(errors: Mapping[str, str]) -> HttpResponse:
    """A 400 naming each bad field."""
    return JsonResponse({name: [text] for name, text in errors.items()}, status=400)


def confirmed_count(request: HttpRequest) -> int | None:
    """The count the confirmation showed (``confirm``), or None when this POST is the first
    one (only count); -1 when ``confirm`` is not a number."""
    raw = request.POST.get("confirm")
    if raw is None:
        return None
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else -1


def confirm_page(
    request: HttpRequest, *, title: str, question: str, count: int, back: str
) -> HttpResponse:
    """The confirmation: what the action will touch, how many, and the button that does it
    (the same POST's fields again, plus ``confirm``)."""
    fields = [
        (k, v) for k, v in request.POST.items() if k not in ("csrfmiddlewaretoken", "confirm")
    ]
    context = {
        "title": title,
        "question": question,
        "count": count,
        "fields": fields,
        "action": request.path,
        "back": back,
    }
    return render(request, "dashboard/console_confirm.html", context)


def done_page(request: HttpRequest, *, title: str, message: str, back: str) -> HttpResponse:
    return render(
        request, "dashboard/console_done.html", {"title": title, "message": message, "back": back}
    )
