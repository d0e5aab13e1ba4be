"""The FastAPI application: GraphQL at /graphql, health checks, and the lifespan that starts and
stops everything the container provides."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import HTTPConnection
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from adapters.auth.jwt_tokens import AuthenticationFailed, JwtAuthenticator
from adapters.metrics.prometheus import PrometheusMetrics
from adapters.postgres.backlog import read_backlog
from adapters.postgres.database import is_reachable
from entrypoints import graphiql
from entrypoints.container import Container, resolved, running
from entrypoints.graphql.context import RequestContext
from entrypoints.graphql.endpoint import AuthenticatedGraphQL
from entrypoints.graphql.schema import build_schema
from entrypoints.inngest_endpoint import mount_inngest_endpoint
from entrypoints.inngest_worker import ingest_track_function
from entrypoints.metrics_access import metrics_refusal
from entrypoints.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from entrypoints.status_page import mount_status_page
from entrypoints.use_cases import LibraryUseCases

log = structlog.get_logger("libingest.app")

# A WebSocket that sends no connection_init within this time is closed (4408).
CONNECTION_INIT_WAIT_SECONDS = 10


class LibingestApp(FastAPI):
    """FastAPI, with a short lane for GraphQL over HTTP.

    Requests to /graphql go straight to our two middlewares and Strawberry's ASGI view; only
    the other paths pass through FastAPI's and Starlette's middleware stack and router. That
    stack (six wrappers, a router, an exit stack) was a tenth of an add's CPU (bench/), and the
    GraphQL view needs none of it: it handles its own errors and sets its own status codes."""

    graphql_lane: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.graphql_lane is not None
            and scope["type"] == "http"
            and (scope["path"] == "/graphql")
        ):
            scope["app"] = self  # what Starlette sets: request.app.state for the context
            await self.graphql_lane(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(container: Container | None = None, *, migrate: bool = True) -> FastAPI:
    container = container or Container()
    settings = container.settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The container starts and stops everything, in its one order (container.running).
        async with running(
            container, migrate=migrate, relay=settings.relay_enabled, subscriptions=True
        ):
            app.state.engine = await resolved(container.engine())
            app.state.use_cases = await resolved(container.library_use_cases())
            app.state.authenticator = container.authenticator()
            app.state.metrics = container.metrics()
            app.state.ingest_track = await resolved(container.ingest_track())
            queue = await resolved(container.ingestion_queue())
            # Everything built so far (schema, container, imported modules) lives as long as the
            # process: moved out of the collector's sight, a full collection no longer walks it
            # in the middle of requests (the add's p99 at 16 connections, bench/).
            gc.collect()
            gc.freeze()
            log.info(
                "app.started",
                environment=settings.libingest_env,
                queue=type(queue).__name__,
                catalog="tidal" if settings.uses_tidal else "offline-sample",
            )
            try:
                yield
            finally:
                log.info("app.stopping")

    # HTTPConnection, not Request: WebSocket handshakes come here too; their token usually
    # arrives later, in connection_init (authenticate_connection below).
    async def context_getter(request: HTTPConnection) -> RequestContext:
        authenticator: JwtAuthenticator = request.app.state.authenticator
        use_cases: LibraryUseCases = request.app.state.use_cases
        try:
            viewer = authenticator.authenticate_request(request.headers.getlist("authorization"))
        except AuthenticationFailed as failure:
            return RequestContext(viewer=None, auth_failure=failure.reason, use_cases=use_cases)
        structlog.contextvars.bind_contextvars(user_id=viewer)
        return RequestContext(viewer=viewer, auth_failure=None, use_cases=use_cases)

    schema = build_schema(
        max_depth=settings.graphql_max_depth,
        max_aliases=settings.graphql_max_aliases,
        max_tokens=settings.graphql_max_tokens,
        introspection=not settings.is_production,
        max_selections=settings.graphql_max_selections,
        field_merge_budget=settings.graphql_field_merge_budget,
        suggestions=not settings.is_production,
        operation_observer=container.metrics(),
    )

    def authenticate_connection(context: RequestContext) -> bool:
        """A WebSocket's `connection_init`: the token as `{"authorization": "Bearer <token>"}`
        in its payload (browsers cannot set headers on a WebSocket), else the handshake's own
        Authorization header, checked by the context getter (ADR 0031)."""
        authorization = context.connection_params.get("authorization")
        if authorization is None:
            return context.viewer is not None
        authenticator: JwtAuthenticator = app.state.authenticator
        token = str(authorization)
        try:
            context.viewer = authenticator.authenticate(token)
        except AuthenticationFailed as failure:
            context.viewer, context.auth_failure = None, failure.reason
            log.info("graphql.connection_refused", reason=failure.reason)
            return False
        context.auth_failure = None
        context.recheck_token = lambda: authenticator.authenticate(token)
        return True

    graphql = AuthenticatedGraphQL(
        schema,
        context_getter=context_getter,
        authenticate_connection=authenticate_connection,
        graphql_ide=None if settings.is_production else "graphiql",
        # Mutations must not ride on GET (CSRF-able links); queries may, for caching proxies.
        allow_queries_via_get=True,
        # Subscriptions over graphql-transport-ws only (the legacy graphql-ws protocol is not
        # served), each connection authenticated by its connection_init (ADR 0031).
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        connection_init_wait_timeout=timedelta(seconds=CONNECTION_INIT_WAIT_SECONDS),
        max_subscriptions_per_connection=settings.graphql_max_subscriptions_per_connection,
    )

    app = LibingestApp(title="libingest", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.graphql_lane = RequestContextMiddleware(
        BodySizeLimitMiddleware(graphql, max_bytes=settings.graphql_max_body_bytes)
    )
    # Starlette routes straight to an ASGI app given as the endpoint (its types only name
    # request handlers): Strawberry speaks graphql-transport-ws there, and refuses any other
    # subprotocol with 4406.
    app.router.add_websocket_route("/graphql", graphql)  # type: ignore[arg-type]

    if not settings.is_production:
        # GraphiQL's scripts, served here rather than from a CDN (ADR 0032). check_dir off: a
        # tree without the built assets still starts, and the page says how to build them.
        app.mount(
            graphiql.ASSETS_PATH,
            StaticFiles(directory=graphiql.assets_directory(), check_dir=False),
            name="graphiql-assets",
        )

    # The page for people (ADR 0031): the library with live progress, the backlog for operators.
    mount_status_page(app, settings)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        if await is_reachable(request.app.state.engine):
            return JSONResponse({"status": "ready", "database": "ok"})
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        if (refusal := metrics_refusal(settings, request)) is not None:
            return refusal
        exporter: PrometheusMetrics = request.app.state.metrics
        backlog = await read_backlog(request.app.state.engine)
        exporter.set_backlog(
            jobs_by_status=backlog.jobs_by_status,
            pending_by_age=backlog.pending_by_age,
            ledger_by_state=backlog.ledger_by_state,
            pace_tokens=backlog.pace.tokens if backlog.pace is not None else None,
        )
        return Response(generate_latest(exporter.registry), media_type=CONTENT_TYPE_LATEST)

    if settings.uses_inngest:
        # The worker endpoint. In cloud mode only fresh signed requests reach the SDK, and a sync
        # registers INNGEST_SERVE_ORIGIN, never the request's Host (entrypoints/inngest_endpoint).
        inngest_client = container.inngest_client()
        ingest_track = ingest_track_function(
            inngest_client,
            lambda: app.state.ingest_track,
            concurrency=settings.inngest_function_concurrency,
        )
        mount_inngest_endpoint(
            app,
            inngest_client,
            [ingest_track],
            serve_origin=settings.inngest_serve_origin,
            serve_path=settings.inngest_serve_path,
        )

    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.graphql_max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    app.state.container = container
    return app
