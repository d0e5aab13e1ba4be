"""Live progress over graphql-transport-ws, against the real server (uvicorn on a loopback port)
with the whole local loop running: the offline sample catalogue, the relay, the local queue and
Qdrant's local mode. A real WebSocket client (the `websockets` library) speaks the protocol."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from adapters.auth.jwt_tokens import JwtAuthenticator, JwtSettings
from tests.e2e.conftest import JWT_SECRET, LOCAL_LOOP, GraphQLClient
from tests.support.graphql_ws import graphql_ws, signed_in
from tests.unit.fakes import FakeSeconds

ALBUM_ID = "900000100"  # the sample double album: 124 tracks
ALBUM_TRACKS = 124
TRACK_ID = "900000501"  # the sample single's track

ITEM_PROGRESS = """
subscription Item($id: ID!) { ingestionProgress(itemId: $id) {
  state tracksTotal tracksRequested tracksIndexed tracksSkipped tracksFailed } }"""
LIBRARY_PROGRESS = """
subscription { libraryProgress { itemId removed
  item { id title ingestion { state tracksTotal tracksIndexed } } } }"""
ADD_ALBUM = """
mutation Add($id: ID!) { addAlbumToLibrary(albumId: $id) {
  ... on AddToLibrarySuccess { item { id } } } }"""
ADD_TRACK = """
mutation Add($id: ID!) { addTrackToLibrary(trackId: $id) {
  ... on AddToLibrarySuccess { item { id } } } }"""
REMOVE = """
mutation Remove($id: ID!) { removeFromLibrary(itemId: $id) {
  ... on RemoveFromLibrarySuccess { removedItemId } } }"""


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Explicitly local, whatever the environment says. Parametrize indirectly to add more."""
    return LOCAL_LOOP | dict(getattr(request, "param", {}))


async def _added(client: GraphQLClient, mutation: str, catalog_id: str) -> str:
    answer = await client(mutation, {"id": catalog_id})
    (result,) = answer["data"].values()
    return str(result["item"]["id"])


async def test_a_bad_token_in_connection_init_is_refused_with_4403(live_server: str) -> None:
    async with graphql_ws(live_server) as socket:
        await socket.send(
            {"type": "connection_init", "payload": {"authorization": "Bearer not-a-token"}}
        )
        assert await socket.close_code() == 4403


async def test_no_token_at_all_is_refused_with_4403(live_server: str) -> None:
    async with graphql_ws(live_server) as socket:
        await socket.send({"type": "connection_init", "payload": {}})
        assert await socket.close_code() == 4403


async def test_a_subscribe_before_the_acknowledgement_is_closed_with_4401(
    live_server: str,
) -> None:
    async with graphql_ws(live_server) as socket:
        await socket.subscribe("1", ITEM_PROGRESS, {"id": str(uuid.uuid4())})
        assert await socket.close_code() == 4401


async def test_another_users_item_is_refused_exactly_as_an_unknown_one(
    live_server: str, as_user: Callable[[str], GraphQLClient], token_for: Callable[..., str]
) -> None:
    alices_item = await _added(as_user("alice"), ADD_TRACK, TRACK_ID)
    unknown_item = str(uuid.uuid4())
    errors = {}
    async with signed_in(live_server, token_for("bob")) as socket:
        for operation_id, item_id in (("alices", alices_item), ("unknown", unknown_item)):
            await socket.subscribe(operation_id, ITEM_PROGRESS, {"id": item_id})
            reply = await socket.receive()
            assert reply["type"] == "error", reply
            assert reply["id"] == operation_id
            errors[operation_id] = [
                {**error, "message": error["message"].replace(item_id, "<id>")}
                for error in reply["payload"]
            ]
    assert errors["alices"] == errors["unknown"]
    assert errors["unknown"][0]["extensions"] == {"code": "NOT_FOUND"}


async def test_progress_is_pushed_as_the_worker_indexes_the_tracks(
    live_server: str, as_user: Callable[[str], GraphQLClient], token_for: Callable[..., str]
) -> None:
    async with signed_in(live_server, token_for("alice")) as alice:
        await alice.subscribe("library", LIBRARY_PROGRESS)
        item_id = await _added(as_user("alice"), ADD_ALBUM, ALBUM_ID)
        await alice.subscribe("item", ITEM_PROGRESS, {"id": item_id})
        item_updates: list[dict[str, Any]] = []
        library_updates: list[dict[str, Any]] = []
        while not item_updates or item_updates[-1]["state"] != "INDEXED":
            message = await alice.receive(within=30)
            assert message["type"] == "next", message
            if message["id"] == "item":
                item_updates.append(message["payload"]["data"]["ingestionProgress"])
            else:
                library_updates.append(message["payload"]["data"]["libraryProgress"])
    indexed = [update["tracksIndexed"] for update in item_updates]
    assert item_updates[-1]["tracksIndexed"] == ALBUM_TRACKS == item_updates[-1]["tracksTotal"]
    # Pushed along the way, not only at the end: several counts between none and all.
    assert len({count for count in indexed if 0 < count < ALBUM_TRACKS}) >= 2, indexed
    assert indexed == sorted(indexed)
    # No update repeats the one before it.
    assert all(a != b for a, b in itertools.pairwise(item_updates))
    assert library_updates, "the library subscription heard nothing"
    assert {update["itemId"] for update in library_updates} == {item_id}
    assert all(update["item"]["id"] == item_id for update in library_updates)


async def test_a_library_subscription_hears_only_its_own_users_items(
    live_server: str, as_user: Callable[[str], GraphQLClient], token_for: Callable[..., str]
) -> None:
    async with signed_in(live_server, token_for("bob")) as bob:
        await bob.subscribe("library", LIBRARY_PROGRESS)
        alices_item = await _added(as_user("alice"), ADD_TRACK, TRACK_ID)
        async with signed_in(live_server, token_for("alice")) as alice:
            await alice.subscribe("item", ITEM_PROGRESS, {"id": alices_item})
            while (await alice.receive(within=30))["payload"]["data"]["ingestionProgress"][
                "state"
            ] != "INDEXED":
                pass
        # Alice's item is indexed; bob then adds his own, and hears of that one alone.
        bobs_item = await _added(as_user("bob"), ADD_TRACK, TRACK_ID)
        heard = set()
        while True:
            update = (await bob.receive(within=30))["payload"]["data"]["libraryProgress"]
            heard.add(update["itemId"])
            if update["item"]["ingestion"]["state"] == "INDEXED":
                break
    assert heard == {bobs_item}


async def test_removing_the_item_completes_its_subscription(
    live_server: str, as_user: Callable[[str], GraphQLClient], token_for: Callable[..., str]
) -> None:
    alice = as_user("alice")
    item_id = await _added(alice, ADD_TRACK, TRACK_ID)
    async with signed_in(live_server, token_for("alice")) as socket:
        await socket.subscribe("library", LIBRARY_PROGRESS)
        await socket.subscribe("item", ITEM_PROGRESS, {"id": item_id})
        first = await socket.receive()
        assert first["id"] == "item" and first["type"] == "next"
        await alice(REMOVE, {"id": item_id})
        seen: dict[str, dict[str, Any]] = {}
        while "item" not in seen or "library" not in seen:
            message = await socket.receive()
            if message["type"] == "complete" or (
                message["id"] == "library"
                and message["payload"]["data"]["libraryProgress"]["removed"]
            ):
                seen[message["id"]] = message
    assert seen["item"] == {"id": "item", "type": "complete"}
    assert seen["library"]["payload"]["data"]["libraryProgress"] == {
        "itemId": item_id,
        "removed": True,
        "item": None,
    }


@pytest.mark.parametrize(
    "settings_overrides",
    [{"graphql_max_subscriptions_per_connection": 2, "graphql_max_subscriptions_per_user": 3}],
    indirect=True,
)
async def test_subscriptions_are_limited_per_connection_and_per_user(
    live_server: str, token_for: Callable[..., str]
) -> None:
    token = token_for("alice")
    async with signed_in(live_server, token) as first, signed_in(live_server, token) as second:
        for operation_id in ("a", "b", "c"):
            await first.subscribe(operation_id, LIBRARY_PROGRESS)
        refused = await first.receive()
        assert refused["id"] == "c" and refused["type"] == "error"
        assert refused["payload"][0]["message"] == "Subscription limit reached"
        await second.subscribe("d", LIBRARY_PROGRESS)  # the user's third
        await second.subscribe("e", LIBRARY_PROGRESS)
        over = await second.receive()
        assert over["id"] == "e" and over["type"] == "error", over
        assert over["payload"][0]["extensions"] == {"code": "TOO_MANY_SUBSCRIPTIONS", "limit": 3}
        # Completing one makes room again.
        await first.send({"id": "a", "type": "complete"})
        await asyncio.sleep(0.2)
        await second.subscribe("f", LIBRARY_PROGRESS)
        with pytest.raises(TimeoutError):
            await second.receive(within=0.5)  # accepted: nothing to say until a change


async def test_the_document_cost_checks_apply_to_subscriptions(
    live_server: str, token_for: Callable[..., str]
) -> None:
    too_many_aliases = (
        "subscription { libraryProgress { " + " ".join(f"a{n}: itemId" for n in range(40)) + " } }"
    )
    async with signed_in(live_server, token_for("alice")) as socket:
        await socket.subscribe("deep", too_many_aliases)
        refused = await socket.receive()
    assert refused["type"] == "error"
    assert "aliases" in refused["payload"][0]["message"]


async def test_queries_and_mutations_stay_on_http(
    live_server: str, token_for: Callable[..., str]
) -> None:
    async with signed_in(live_server, token_for("alice")) as socket:
        await socket.subscribe("query", "{ library { totalCount } }")
        refused = await socket.receive()
    assert refused["type"] == "error", refused
    assert refused["id"] == "query"
    assert refused["payload"][0]["extensions"] == {"code": "BAD_REQUEST"}
    assert "only subscriptions" in refused["payload"][0]["message"]


async def test_a_message_past_the_body_limit_closes_the_socket_with_1009(
    live_server: str, token_for: Callable[..., str]
) -> None:
    async with signed_in(live_server, token_for("alice")) as socket:
        await socket.subscribe("big", LIBRARY_PROGRESS, {"padding": "x" * 20_000})
        assert await socket.close_code() == 1009  # "message too big"


async def test_a_subscription_sent_over_http_is_refused_as_the_clients_error(
    as_user: Callable[[str], GraphQLClient],
) -> None:
    response = await as_user("alice").post(LIBRARY_PROGRESS)

    assert response.status_code == 400, response.text
    assert response.text == "subscriptions are not allowed when using POST"


async def test_a_subscription_ends_with_its_token(
    live_server: str,
    app: FastAPI,
    as_user: Callable[[str], GraphQLClient],
    token_for: Callable[..., str],
) -> None:
    # The service's authenticator on a clock the test moves: the token is checked again
    # before each update, against that clock.
    clock = FakeSeconds(start=time.time())
    app.state.authenticator = JwtAuthenticator(JwtSettings(secret=JWT_SECRET), clock=clock)
    alice = as_user("alice")
    item_id = await _added(alice, ADD_TRACK, TRACK_ID)
    async with signed_in(live_server, token_for("alice", timedelta(minutes=5))) as socket:
        await socket.subscribe("item", ITEM_PROGRESS, {"id": item_id})
        assert (await socket.receive())["type"] == "next"  # the current state
        clock.now += 3600
        await alice(REMOVE, {"id": item_id})  # a change to send
        refused = await socket.receive()
        completed = await socket.receive()
    assert refused["payload"]["data"] is None
    assert refused["payload"]["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
    assert completed == {"id": "item", "type": "complete"}
