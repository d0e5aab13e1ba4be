"""Who may read /metrics (ADR 0022): the exporter names internals (queue depths, failure counts)
that are nobody's business on the public port.

- METRICS_TOKEN set: only requests with `Authorization: Bearer <token>` (Prometheus'
  `authorization` scrape setting); others get 401.
- METRICS_PORT set: only requests that arrived on that port; elsewhere /metrics is not found.
- Both: both conditions. Neither: served in development (a local tool, bound to 127.0.0.1 by
  default), not found in production."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response

from entrypoints.settings import Settings


def metrics_refusal(settings: Settings, request: Request) -> Response | None:
    """The answer that refuses this request /metrics, or None when it may read them."""
    if settings.metrics_port is not None:
        server = request.scope.get("server")
        if server is None or server[1] != settings.metrics_port:
            return Response(status_code=404)
    if settings.metrics_token:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expected = settings.metrics_token.encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
            return Response(status_code=401, headers={"www-authenticate": "Bearer"})
        return None
    if settings.metrics_port is None and settings.is_production:
        return Response(status_code=404)
    return None
