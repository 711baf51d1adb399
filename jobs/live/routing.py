"""The WebSocket side of the ASGI application: origin check, authentication, routes.

Authentication is the REST API's: a token (``?token=<key>`` or the header
``Authorization: Token <key>``) or else the Django session. A token that is given but wrong
does not fall back to the session: the socket is anonymous, like a 401 from the REST API. What
an anonymous socket gets is decided by the consumer (accept, then close with 4401).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import ParseResult, parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.routing import URLRouter
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.urls import re_path
from rest_framework.authtoken.models import Token

from jobs.live.consumers import JobStreamConsumer

websocket_urlpatterns = [
    re_path(r"^jobs/stream/?$", JobStreamConsumer.as_asgi(), name="job-stream"),
]


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin1")
    return None


def token_from_scope(scope: dict[str, Any]) -> str | None:
    """The API token the client sent: ``?token=`` first, then ``Authorization: Token <key>``;
    None when it sent neither (an ``Authorization`` of another scheme counts as neither)."""
    query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin1"))
    if query.get("token"):
        return query["token"][0]
    scheme, _, key = (_header(scope, b"authorization") or "").partition(" ")
    if scheme.lower() == "token":
        return key.strip()
    return None


@database_sync_to_async
def _user_for_token(key: str) -> Any:
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return AnonymousUser()
    return token.user


class TokenAuthMiddleware(BaseMiddleware):
    """Sets ``scope["user"]`` from an API token when the client sent one (inside the session
    middleware, so a token wins over a session cookie)."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        key = token_from_scope(scope)
        if key is not None:
            scope = dict(scope, user=await _user_for_token(key))
        return await super().__call__(scope, receive, send)


class BrowserOriginValidator(OriginValidator):
    """Channels' ``AllowedHostsOriginValidator``, except that a handshake without ``Origin``
    is let through: browsers always send one (cross-site WebSocket hijacking comes only from
    browsers), so no Origin means a non-browser client, which authenticates by itself."""

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        if parsed_origin is None:
            return True
        return bool(super().valid_origin(parsed_origin))


def websocket_application() -> Any:
    """Origin check -> session -> token -> ``/jobs/stream``."""
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = ["localhost", "127.0.0.1", "[::1]"]
    return BrowserOriginValidator(
        AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns))), allowed
    )
