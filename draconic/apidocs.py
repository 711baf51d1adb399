"""The API documentation pages, Swagger UI at ``/api/docs/`` and ReDoc at ``/api/redoc/``.

Both are drf-spectacular's views with their JavaScript and CSS served by this app
(``drf_spectacular_sidecar``, ``SPECTACULAR_SETTINGS``), so they work without internet. Each
answers with a Content-Security-Policy that allows this origin only: the vendored bundles
still name other hosts (ReDoc's sidebar shows Redocly's logo from its CDN, Swagger UI may ask
an online validator), and the policy keeps the browser from even trying. Inline scripts and
styles stay allowed: both pages are built from them.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView
from rest_framework.request import Request
from rest_framework.response import Response

SAME_ORIGIN_ONLY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ]
)


class _SameOriginOnly:
    """Adds ``SAME_ORIGIN_ONLY`` to every response of the view (``get`` stays drf-spectacular's,
    excluded from the schema)."""

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        response["Content-Security-Policy"] = SAME_ORIGIN_ONLY
        return response


class SwaggerView(_SameOriginOnly, SpectacularSwaggerView):
    pass


class RedocView(_SameOriginOnly, SpectacularRedocView):
    # drf-spectacular's page links web fonts from Google; ours does not.
    template_name = "api/redoc.html"
