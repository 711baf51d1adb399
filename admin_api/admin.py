"""The admins other apps register (auth's User and Group, DRF's tokens) under the viewer
rule (``jobs.admin_access``): an on-call viewer given their model permissions still adds,
changes and deletes nothing in the admin.

``admin_api`` comes after those apps in ``INSTALLED_APPS``, so autodiscovery has registered
their admins when this module runs; each one not already ours is registered again as a
subclass that puts ``ViewerReadOnlyAdmin`` first. ``tests/integration/test_admin_viewers.py``
checks every registered admin, so an app added later cannot slip past unnoticed."""

from __future__ import annotations

from django.contrib import admin

from jobs.admin_access import ViewerReadOnlyAdmin

for model, model_admin in list(admin.site._registry.items()):
    if isinstance(model_admin, ViewerReadOnlyAdmin):
        continue
    base = type(model_admin)
    admin.site.unregister(model)
    admin.site.register(
        model, type(f"ViewerReadOnly{base.__name__}", (ViewerReadOnlyAdmin, base), {})
    )
