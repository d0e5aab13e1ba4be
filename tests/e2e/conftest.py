"""The real ASGI application over HTTP (httpx), with its lifespan, on the test database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from dependency_injector import providers
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.auth.jwt_tokens import JwtAuthenticator, JwtSettings
from entrypoints.app import create_app
from entrypoints.container import Container
from entrypoints.server import server_config
from entrypoints.settings import Settings
from tests.support.browser import chromium

JWT_SECRET = "test-secret-that-is-long-enough-0123456789"

# The whole loop on this machine, whatever the environment says: the offline sample catalogue,
# the local queue, Qdrant's local mode, and a relay that sweeps often.
LOCAL_LOOP: dict[str, Any] = {
    "relay_sweep_seconds": 0.2,
    "tidal_client_id": None,
    "tidal_client_secret": None,
    "inngest_event_key": None,
    "inngest_dev": None,
    "qdrant_url": None,
}


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Parametrize indirectly to run the app with other settings."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
def settings(database_url: str, tmp_path: Path, settings_overrides: dict[str, Any]) -> Settings:
    values: dict[str, Any] = {
        "libingest_data_dir": tmp_path,
        "database_url": database_url,
        "auth_jwt_secret": JWT_SECRET,
        "database_pool_size": 20,
    }
    return Settings(**(values | settings_overrides))


@pytest.fixture
async def app(settings: Settings, engine: AsyncEngine) -> AsyncIterator[FastAPI]:
    container = Container()
    container.settings.override(providers.Object(settings))
    application = create_app(container)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://libingest.test") as c:
        yield c


@pytest.fixture
def token_for() -> Callable[..., str]:
    authenticator = JwtAuthenticator(JwtSettings(secret=JWT_SECRET))

    def issue(user_id: str, lifetime: timedelta = timedelta(hours=1)) -> str:
        return authenticator.issue(user_id, lifetime=lifetime)

    return issue


class GraphQLClient:
    def __init__(self, client: httpx.AsyncClient, token: str | None) -> None:
        self.client = client
        self.token = token

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        return await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )

    async def __call__(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        response = await self.post(query, variables)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def as_user(client: httpx.AsyncClient, token_for: Callable[..., str]) -> Callable[[str], Any]:
    def make(user_id: str) -> GraphQLClient:
        return GraphQLClient(client, token_for(user_id))

    return make


@pytest.fixture
async def live_server(app: FastAPI) -> AsyncIterator[str]:
    """The app served by uvicorn on a loopback port, configured as `libingest serve` configures
    it: for what only a real server shows (header limits, status codes on the wire, outside
    tools such as the graphql-http audit). Yields the base URL."""
    config = server_config(app, host="127.0.0.1", port=0)
    config.lifespan = "off"  # the `app` fixture has entered the lifespan already
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()  # raises what stopped it
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A headless Chromium (tests/support/browser.py); the test is skipped without one."""
    yield from chromium(tmp_path / "chromium-profile")
