"""The Django admin's side of the viewer rule (``admin_api.access``): an on-call viewer, staff
or not, may look at whatever their view permissions show and change nothing there.

Every ``ModelAdmin`` of ours derives from ``ViewerReadOnlyAdmin``. For a viewer it answers
no to add, change and delete whatever model permissions they were also given (so the pages
render read-only, and Django refuses the POSTs), and offers no action: Django runs only the
actions ``get_actions`` returns, so a viewer's POST of one changes nothing. Inlines need no
rule of their own: a change page whose object the user may not change saves no inline.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from admin_api.access import is_viewer


class ViewerReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return not is_viewer(request.user) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not is_viewer(request.user) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not is_viewer(request.user) and super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {} if is_viewer(request.user) else super().get_actions(request)


def may_act(request: HttpRequest, perm: str) -> bool:
    """An admin action's permission: the model permission ``perm``, and not a viewer."""
    return not is_viewer(request.user) and request.user.has_perm(perm)
