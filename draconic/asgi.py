"""ASGI entry point: HTTP (Django) and the WebSocket feed (Channels) on one server.

``websocket``: origin check (a missing Origin is allowed: non-browser clients send none) ->
session -> API token -> ``jobs.routing.websocket_urlpatterns`` (``/jobs/stream``).
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "draconic.settings")
# Django must be set up before anything imports models (the consumers do).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from jobs.live.routing import websocket_application  # noqa: E402

application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": websocket_application()})
