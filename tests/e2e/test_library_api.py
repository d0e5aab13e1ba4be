"""The library API as a GraphQL client uses it, over HTTP, with real tokens and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.e2e.conftest import JWT_SECRET, GraphQLClient

ADD_ALBUM = """
mutation Add($id: ID!) {
  addAlbumToLibrary(albumId: $id) {
    __typename
    ... on AddToLibrarySuccess {
      alreadyInLibrary
      item { id kind catalogId title artistNames addedAt
             ingestion { state tracksTotal tracksRequested tracksIndexed tracksSkipped
                         tracksFailed lastError } }
    }
    ... on InvalidCatalogId { message catalogId }
  }
}"""
ADD_TRACK = """
mutation Add($id: ID!) {
  addTrackToLibrary(trackId: $id) {
    __typename
    ... on AddToLibrarySuccess { alreadyInLibrary item { id kind catalogId } }
    ... on InvalidCatalogId { message catalogId }
  }
}"""
ADD_PLAYLIST = """
mutation Add($id: ID!) {
  addPlaylistToLibrary(playlistId: $id) {
    __typename
    ... on AddToLibrarySuccess { alreadyInLibrary item { id kind catalogId ingestion { state } } }
    ... on InvalidCatalogId { message catalogId }
  }
}"""
SAMPLE_PLAYLIST = "5a3b1e00-0000-4000-8000-000000000001"
REMOVE = """
mutation Remove($id: ID!) {
  removeFromLibrary(itemId: $id) {
    __typename
    ... on RemoveFromLibrarySuccess { removedItemId }
    ... on LibraryItemNotFound { message itemId }
  }
}"""
LIBRARY = """
query Library($first: Int, $after: String, $kind: LibraryItemKind) {
  library(first: $first, after: $after, kind: $kind) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id kind catalogId ingestion { state } } }
  }
}"""
ITEM = "query Item($id: ID!) { libraryItem(id: $id) { id catalogId kind } }"


async def _rows(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def test_adding_an_album_answers_the_new_item_pending_and_re_adding_says_so(
    as_user: Callable[[str], GraphQLClient],
) -> None:
    alice = as_user("alice")
    first = await alice(ADD_ALBUM, {"id": "396698918"})
    again = await alice(ADD_ALBUM, {"id": "396698918"})

    added = first["data"]["addAlbumToLibrary"]
    assert added["__typename"] == "AddToLibrarySuccess"
    assert added["alreadyInLibrary"] is False
    assert added["item"]["kind"] == "ALBUM"
    assert added["item"]["catalogId"] == "396698918"
    assert added["item"]["ingestion"] == {
        "state": "PENDING",
        "tracksTotal": 0,
        "tracksRequested": 0,
        "tracksIndexed": 0,
        "tracksSkipped": 0,
        "tracksFailed": 0,
        "lastError": None,
    }
    assert again["data"]["addAlbumToLibrary"]["alreadyInLibrary"] is True
    assert again["data"]["addAlbumToLibrary"]["item"]["id"] == added["item"]["id"]


async def test_adding_a_track_makes_a_track_item(as_user: Callable[[str], GraphQLClient]) -> None:
    result = await as_user("alice")(ADD_TRACK, {"id": "251380837"})

    item = result["data"]["addTrackToLibrary"]["item"]
    assert item["kind"] == "TRACK"
    assert item["catalogId"] == "251380837"


@pytest.mark.parametrize("bad_id", ["abc", "", "9" * 21, "x" * 10_000, "🎵🎶", "1; DROP TABLE x"])
async def test_a_malformed_catalogue_id_answers_invalid_catalog_id_and_writes_nothing(
    bad_id: str, as_user: Callable[[str], GraphQLClient], engine: AsyncEngine
) -> None:
    for mutation, field in ((ADD_ALBUM, "addAlbumToLibrary"), (ADD_TRACK, "addTrackToLibrary")):
        result = await as_user("alice")(mutation, {"id": bad_id})
        answer = result["data"][field]
        assert answer["__typename"] == "InvalidCatalogId"
        assert answer["catalogId"] == bad_id
        assert "catalogue id" in answer["message"]

    assert await _rows(engine, "library_items") == 0
    assert await _rows(engine, "scheduling_jobs") == 0


async def test_a_playlist_is_added_under_its_uuid_in_lower_case_and_listed_as_a_playlist(
    as_user: Callable[[str], GraphQLClient],
) -> None:
    alice = as_user("alice")
    first = (await alice(ADD_PLAYLIST, {"id": SAMPLE_PLAYLIST.upper()}))["data"]
    again = (await alice(ADD_PLAYLIST, {"id": f" {SAMPLE_PLAYLIST} "}))["data"]
    await alice(ADD_ALBUM, {"id": "396698918"})

    added = first["addPlaylistToLibrary"]
    assert added["__typename"] == "AddToLibrarySuccess"
    assert (added["alreadyInLibrary"], again["addPlaylistToLibrary"]["alreadyInLibrary"]) == (
        False,
        True,
    )
    assert added["item"]["kind"] == "PLAYLIST"
    assert added["item"]["catalogId"] == SAMPLE_PLAYLIST
    assert again["addPlaylistToLibrary"]["item"]["id"] == added["item"]["id"]
    listed = (await alice(LIBRARY, {"kind": "PLAYLIST"}))["data"]["library"]
    assert [edge["node"]["id"] for edge in listed["edges"]] == [added["item"]["id"]]


@pytest.mark.parametrize(
    "bad_id",
    [
        "396698918",
        "",
        "5a3b1e00000040008000000000000001",
        "{5a3b1e00-0000-4000-8000-000000000001}",
        "5a3b1e00-0000-4000-8000-00000000000z",
        "37i9dQZF1DXcBWIGoYBM5M",  # a Spotify playlist id
        "x" * 10_000,
        "1; DROP TABLE x",
    ],
)
async def test_a_playlist_id_that_is_not_a_uuid_answers_invalid_catalog_id_and_writes_nothing(
    bad_id: str, as_user: Callable[[str], GraphQLClient], engine: AsyncEngine
) -> None:
    result = await as_user("alice")(ADD_PLAYLIST, {"id": bad_id})

    answer = result["data"]["addPlaylistToLibrary"]
    assert answer["__typename"] == "InvalidCatalogId"
    assert answer["catalogId"] == bad_id
    assert answer["message"].startswith("not a TIDAL catalogue id (a UUID such as ")
    assert await _rows(engine, "library_items") == 0
    assert await _rows(engine, "scheduling_jobs") == 0


async def test_a_playlists_uuid_is_no_album_or_track_id(
    as_user: Callable[[str], GraphQLClient], engine: AsyncEngine
) -> None:
    for mutation, field in ((ADD_ALBUM, "addAlbumToLibrary"), (ADD_TRACK, "addTrackToLibrary")):
        result = await as_user("alice")(mutation, {"id": SAMPLE_PLAYLIST})
        assert result["data"][field]["__typename"] == "InvalidCatalogId"

    assert await _rows(engine, "library_items") == 0


async def test_the_library_pages_newest_first_and_filters_by_kind(
    as_user: Callable[[str], GraphQLClient],
) -> None:
    alice = as_user("alice")
    for number in range(1, 6):
        await alice(ADD_ALBUM, {"id": str(number)})
        await alice(ADD_TRACK, {"id": str(number)})
    await as_user("bob")(ADD_ALBUM, {"id": "1"})

    collected: list[str] = []
    after = None
    while True:
        result = await alice(LIBRARY, {"first": 2, "after": after, "kind": "ALBUM"})
        library = result["data"]["library"]
        assert library["totalCount"] == 5
        collected += [edge["node"]["catalogId"] for edge in library["edges"]]
        assert all(edge["node"]["kind"] == "ALBUM" for edge in library["edges"])
        if not library["pageInfo"]["hasNextPage"]:
            break
        after = library["pageInfo"]["endCursor"]

    assert collected == ["5", "4", "3", "2", "1"]
    everything = await alice(LIBRARY, {"first": 100})
    assert everything["data"]["library"]["totalCount"] == 10


@pytest.mark.parametrize("cursor", ["garbage", "", "x" * 10_000, "bGkxOnh8eQ"])
async def test_a_forged_cursor_is_a_bad_user_input_error(
    cursor: str, as_user: Callable[[str], GraphQLClient]
) -> None:
    result = await as_user("alice")(LIBRARY, {"after": cursor})

    assert result["data"] is None
    assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_page_size_past_the_maximum_is_refused(
    as_user: Callable[[str], GraphQLClient],
) -> None:
    result = await as_user("alice")(LIBRARY, {"first": 100_000})

    assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_removing_an_item_deletes_it_and_a_second_remove_is_not_found(
    as_user: Callable[[str], GraphQLClient], engine: AsyncEngine
) -> None:
    alice = as_user("alice")
    added = await alice(ADD_ALBUM, {"id": "11"})
    item_id = added["data"]["addAlbumToLibrary"]["item"]["id"]

    removed = await alice(REMOVE, {"id": item_id})
    again = await alice(REMOVE, {"id": item_id})

    assert removed["data"]["removeFromLibrary"] == {
        "__typename": "RemoveFromLibrarySuccess",
        "removedItemId": item_id,
    }
    assert again["data"]["removeFromLibrary"]["__typename"] == "LibraryItemNotFound"
    assert await _rows(engine, "library_items") == 0
    assert await _rows(engine, "scheduling_jobs") == 0


async def test_another_users_item_answers_exactly_as_an_unknown_id(
    as_user: Callable[[str], GraphQLClient], engine: AsyncEngine
) -> None:
    added = await as_user("alice")(ADD_ALBUM, {"id": "12"})
    alice_item = added["data"]["addAlbumToLibrary"]["item"]["id"]
    unknown = "00000000-0000-4000-8000-000000000000"
    mallory = as_user("mallory")

    foreign_get = await mallory(ITEM, {"id": alice_item})
    unknown_get = await mallory(ITEM, {"id": unknown})
    foreign_remove = await mallory(REMOVE, {"id": alice_item})
    unknown_remove = await mallory(REMOVE, {"id": unknown})

    assert foreign_get == unknown_get == {"data": {"libraryItem": None}}
    strip = _without_ids(foreign_remove)
    assert strip == _without_ids(unknown_remove)
    assert foreign_remove["data"]["removeFromLibrary"]["__typename"] == "LibraryItemNotFound"
    assert (await mallory(LIBRARY, {}))["data"]["library"]["totalCount"] == 0
    assert await _rows(engine, "library_items") == 1


def _without_ids(result: dict[str, Any]) -> dict[str, Any]:
    answer = dict(result["data"]["removeFromLibrary"])
    answer["message"] = answer["message"].replace(answer.pop("itemId"), "<id>")
    return answer


@pytest.mark.parametrize("bad_id", ["abc", "", "x" * 10_000, "💿", "' OR 1=1 --"])
async def test_a_malformed_item_id_is_not_found_not_an_error(
    bad_id: str, as_user: Callable[[str], GraphQLClient]
) -> None:
    alice = as_user("alice")
    assert (await alice(ITEM, {"id": bad_id})) == {"data": {"libraryItem": None}}
    removed = await alice(REMOVE, {"id": bad_id})
    assert removed["data"]["removeFromLibrary"]["__typename"] == "LibraryItemNotFound"


def _forged_tokens() -> dict[str, str | None]:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    valid_claims = {"sub": "alice", "exp": now + timedelta(hours=1)}
    header_none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"  # {"alg":"none","typ":"JWT"}
    body = jwt.encode(valid_claims, JWT_SECRET, algorithm="HS256").split(".")[1]
    return {
        "missing": None,
        "expired": jwt.encode(
            {"sub": "alice", "exp": now - timedelta(hours=1)}, JWT_SECRET, algorithm="HS256"
        ),
        "wrong key": jwt.encode(valid_claims, "another-secret-entirely-0123456789", "HS256"),
        "alg none": f"{header_none}.{body}.",
        "no exp": jwt.encode({"sub": "alice"}, JWT_SECRET, algorithm="HS256"),
        "no sub": jwt.encode({"exp": now + timedelta(hours=1)}, JWT_SECRET, algorithm="HS256"),
        "garbled": "not.a.jwt",
        "HS512": jwt.encode(valid_claims, JWT_SECRET, algorithm="HS512"),
    }


@pytest.mark.parametrize("case", list(_forged_tokens()))
async def test_without_a_valid_token_every_operation_is_unauthenticated_with_no_data(
    case: str, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    token = _forged_tokens()[case]
    for query, variables in ((ADD_ALBUM, {"id": "1"}), (LIBRARY, {}), ("{ nonsense }", {})):
        result = await GraphQLClient(client, token)(query, variables)
        assert result["data"] is None
        assert [error["extensions"]["code"] for error in result["errors"]] == ["UNAUTHENTICATED"]
        if token:
            assert token not in str(result)
    assert await _rows(engine, "library_items") == 0


# The schema has no recursive type, so its natural queries stay shallow; a limit of 2 lets an
# ordinary mutation (depth 3) stand for anything nested past the configured limit.
@pytest.mark.parametrize("settings_overrides", [{"graphql_max_depth": 2}], indirect=True)
async def test_a_query_nested_past_the_depth_limit_is_refused(
    as_user: Callable[[str], GraphQLClient], engine: AsyncEngine
) -> None:
    result = await as_user("alice")(
        'mutation { addAlbumToLibrary(albumId: "1") { ... on AddToLibrarySuccess '
        "{ item { ingestion { state } } } } }"
    )

    assert result.get("data") is None
    assert "exceeds maximum operation depth" in result["errors"][0]["message"]
    assert await _rows(engine, "library_items") == 0


async def test_too_many_aliases_are_refused(as_user: Callable[[str], GraphQLClient]) -> None:
    aliases = " ".join(f"a{n}: __typename" for n in range(40))

    result = await as_user("alice")(f"{{ {aliases} }}")

    assert result.get("data") is None
    assert "aliases" in result["errors"][0]["message"]


async def test_an_oversized_request_body_is_refused_with_413(
    as_user: Callable[[str], GraphQLClient],
) -> None:
    response = await as_user("alice").post(ITEM, {"id": "x" * 200_000})

    assert response.status_code == 413


async def test_fifty_concurrent_identical_adds_make_one_item_and_one_job(
    as_user: Callable[[str], GraphQLClient], engine: AsyncEngine
) -> None:
    alice = as_user("alice")
    results = await asyncio.gather(*(alice(ADD_ALBUM, {"id": "396698918"}) for _ in range(50)))

    answers = [result["data"]["addAlbumToLibrary"] for result in results]
    assert sum(not answer["alreadyInLibrary"] for answer in answers) == 1
    assert len({answer["item"]["id"] for answer in answers}) == 1
    assert await _rows(engine, "library_items") == 1
    assert await _rows(engine, "scheduling_jobs") == 1


async def test_health_and_readiness_answer(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"
    assert ready.headers["x-request-id"]
