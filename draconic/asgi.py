"""ASGI entry point: HTTP (Django) and the WebSocket feed (Channels) on one server.

``http``: Django's WSGI handler through ``draconic.asgi_wsgi`` (one thread per process, so a
database connection is kept between requests, as under gunicorn).
``websocket``: origin check (a missing Origin is allowed: non-browser clients send none) ->
session -> API token -> ``jobs.routing.websocket_urlpatterns`` (``/jobs/stream``).
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "draconic.settings")
# Django must be set up before anything imports models (the consumers do).
django_wsgi_app = get_wsgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from draconic.asgi_wsgi import WsgiHttp  # noqa: E402
from jobs.live.routing import websocket_application  # noqa: E402

application = ProtocolTypeRouter(
    {"http": WsgiHttp(django_wsgi_app), "websocket": websocket_application()}
)
