"""``/dashboard/audit/``: every operator action (who, what, how many, when), newest first,
filtered by actor and by action (both in the URL), keyset-paginated on the id: one query a
page over ``operator_action_actor_idx`` / ``operator_action_action_idx`` or the primary key.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from admin_api.console.common import bad_request, operator_page
from admin_api.models import OperatorAction

PAGE = 50


@operator_page
@require_GET
def audit_view(request: HttpRequest) -> HttpResponse:
    unknown = sorted(set(request.GET) - {"actor", "action", "before"})
    if unknown:
        return bad_request(dict.fromkeys(unknown, "unknown filter; allowed: actor, action, before"))
    actor = request.GET.get("actor", "").strip()
    action = request.GET.get("action", "").strip()
    before = request.GET.get("before", "")
    if len(actor) > 150:
        return bad_request({"actor": "at most 150 characters"})
    if len(action) > 40:
        return bad_request({"action": "at most 40 characters"})
    if before and not (before.isascii() and before.isdigit() and len(before) < 18):
        return bad_request({"before": "not a cursor of this list"})
    rows = OperatorAction.objects.all()
    if actor:
        rows = rows.filter(actor_name=actor)
    if action:
        rows = rows.filter(action=action)
    if before:
        rows = rows.filter(id__lt=int(before))
    entries = list(rows.order_by("-id")[: PAGE + 1])
    more = len(entries) > PAGE
    entries = entries[:PAGE]
    filters: dict[str, str | int] = {k: v for k, v in (("actor", actor), ("action", action)) if v}
    context = {
        "entries": entries,
        "actor": actor,
        "action": action,
        "next": urlencode({**filters, "before": entries[-1].id}) if more else "",
    }
    return render(request, "dashboard/audit.html", context)


urlpatterns = [path("audit/", audit_view, name="dashboard-audit")]
