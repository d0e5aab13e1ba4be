"""The HTTP server's configuration, in one place for `libingest serve` and the tests that run the
service over real HTTP: what the server itself bounds must be the same in both."""

from __future__ import annotations

from typing import Any

import uvicorn


def server_config(app: Any, *, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # our structlog configuration stays in charge
        timeout_graceful_shutdown=10,
    )
