"""The operator pages' routes (dead letters, queues and workers, audit), under /dashboard/."""

from __future__ import annotations

from admin_api.console import audit_view, dead, queues

ops_urlpatterns = [*dead.urlpatterns, *queues.urlpatterns, *audit_view.urlpatterns]
