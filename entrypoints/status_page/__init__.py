"""A page for people at /status (ADR 0031): the signed-in user's library with live progress
bars over the `libraryProgress` subscription, and the backlog for operators.

Plain HTML, CSS and JavaScript from package data, served by the service: no build step and
nothing loaded from elsewhere, so it works offline and under a strict content policy. The
backlog is the one `libingest status` and the /metrics gauges read (adapters/postgres/
backlog.py), answered at /status/backlog to whoever may read /metrics (its token)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from adapters.postgres.backlog import Backlog, read_backlog
from entrypoints import packaged_pages
from entrypoints.metrics_access import metrics_refusal
from entrypoints.settings import Settings

PAGE_PATH = "/status"
ASSETS_PATH = "/status/assets"
BACKLOG_PATH = "/status/backlog"
RECENT_FAILURES = 10

# Everything from this origin; the WebSocket too ('self' covers ws: and wss: on this host).
CONTENT_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def backlog_as_json(backlog: Backlog) -> dict[str, Any]:
    pace = backlog.pace
    return {
        "jobsByStatus": backlog.jobs_by_status,
        "pendingByAge": backlog.pending_by_age,
        "oldestPending": backlog.oldest_pending.isoformat() if backlog.oldest_pending else None,
        "ledgerByState": backlog.ledger_by_state,
        "pace": None
        if pace is None
        else {
            "tokens": pace.tokens,
            "capacity": pace.capacity,
            "requestsPerSecond": pace.requests_per_second,
            "blockedUntil": pace.blocked_until.isoformat() if pace.blocked_until else None,
        },
        "recentFailures": [
            {"what": failure.what, "reason": failure.reason, "at": failure.at.isoformat()}
            for failure in backlog.recent_failures
        ],
    }


def mount_status_page(app: FastAPI, settings: Settings) -> None:
    app.mount(
        ASSETS_PATH,
        StaticFiles(directory=packaged_pages.assets_directory(__name__)),
        name="status-assets",
    )

    @app.get(PAGE_PATH, include_in_schema=False)
    async def status_page() -> HTMLResponse:
        return HTMLResponse(
            packaged_pages.page(__name__, ASSETS_PATH),
            headers={"content-security-policy": CONTENT_POLICY},
        )

    @app.get(BACKLOG_PATH, include_in_schema=False)
    async def status_backlog(request: Request) -> Response:
        # Operators only, as /metrics: the same figures as its backlog gauges, and the latest
        # failures' reasons.
        if (refusal := metrics_refusal(settings, request)) is not None:
            return refusal
        backlog = await read_backlog(request.app.state.engine, failures=RECENT_FAILURES)
        return JSONResponse(backlog_as_json(backlog), headers={"cache-control": "no-store"})
