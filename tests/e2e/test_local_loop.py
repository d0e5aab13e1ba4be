"""The whole loop on one machine: the offline sample catalogue, the local queue, Qdrant local mode
in the data directory and a real PostgreSQL. An album added over GraphQL reaches INDEXED, another
user's add costs nothing, a restart mid-ingestion finishes the work, and search finds each track."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from dependency_injector import providers
from qdrant_client import QdrantClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.qdrant.track_index import QdrantTrackIndex
from adapters.tidal.sample import SAMPLE_PLAYLIST_IDS, sample_catalog
from application.ports.catalog import CatalogTrack
from application.ports.track_index import TrackVectors
from application.use_cases.ingest_track import IngestTrack, TrackDocument
from domain.values import CatalogId, Isrc
from entrypoints.app import create_app, resolved
from entrypoints.container import Container
from entrypoints.settings import Settings
from tests.e2e.conftest import LOCAL_LOOP, GraphQLClient

ALBUM_ID = "900000100"  # the sample double album: 124 tracks, 124 distinct ISRCs and titles
ALBUM_TRACKS = 124
BASE_URL = "http://libingest.test"

ADD_ALBUM = """
mutation Add($id: ID!) { addAlbumToLibrary(albumId: $id) {
  ... on AddToLibrarySuccess { item { id } alreadyInLibrary } } }"""
PROGRESS = """
query Item($id: ID!) { libraryItem(id: $id) { ingestion {
  state tracksTotal tracksRequested tracksIndexed tracksSkipped tracksFailed lastError } } }"""
SEARCH = """
query Search($query: String!, $limit: Int) {
  searchTracks(query: $query, limit: $limit) { isrc trackId title artistNames score } }"""
LEDGER = text(
    "SELECT isrc, state, attempts, dispatched_at, indexed_at, updated_at"
    " FROM isrc_ledger ORDER BY isrc"
)


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Explicitly local, whatever the environment says: no TIDAL, no Inngest, no Qdrant server.
    Parametrize indirectly to add settings."""
    return LOCAL_LOOP | dict(getattr(request, "param", {}))


@dataclass(frozen=True, slots=True)
class RunningApp:
    container: Container
    http: httpx.AsyncClient
    tokens: Callable[[str], str]

    def as_user(self, user_id: str) -> GraphQLClient:
        return GraphQLClient(self.http, self.tokens(user_id))

    async def track_index(self) -> QdrantTrackIndex:
        index: QdrantTrackIndex = await resolved(self.container.track_index())
        return index


AppRunner = Callable[..., AbstractAsyncContextManager[RunningApp]]


@pytest.fixture
def run_app(settings: Settings, engine: AsyncEngine, token_for: Callable[..., str]) -> AppRunner:
    """Starts the application on the test database and the test's data directory; each call is
    a new process as far as the app can tell (a new container, a new lifespan)."""

    @asynccontextmanager
    async def running(
        configure: Callable[[Container], None] | None = None,
    ) -> AsyncIterator[RunningApp]:
        container = Container()
        container.settings.override(providers.Object(settings))
        if configure is not None:
            configure(container)
        application = create_app(container)
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
                yield RunningApp(container=container, http=http, tokens=token_for)

    return running


@pytest.fixture(scope="module")
def album_tracks() -> list[CatalogTrack]:
    """The album as the catalogue holds it, read through the same adapter the app uses."""

    async def read() -> list[CatalogTrack]:
        catalog = sample_catalog()
        try:
            return [
                track
                async for page in catalog.album_pages(CatalogId(ALBUM_ID))
                for track in page.tracks
            ]
        finally:
            await catalog.aclose()

    tracks = asyncio.run(read())
    assert len(tracks) == ALBUM_TRACKS
    return tracks


def isrcs_of(tracks: Sequence[CatalogTrack]) -> set[Isrc]:
    return {track.isrc for track in tracks if track.isrc is not None}


async def until(condition: Callable[[], Awaitable[Any]], seconds: float = 60.0) -> Any:
    """Polls until `condition` answers something truthy and returns it."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await condition()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not reached in {seconds} s")
        await asyncio.sleep(0.05)


async def add_album(user: GraphQLClient) -> str:
    added = await user(ADD_ALBUM, {"id": ALBUM_ID})
    assert "errors" not in added, added
    item_id: str = added["data"]["addAlbumToLibrary"]["item"]["id"]
    return item_id


async def progress_of(user: GraphQLClient, item_id: str) -> dict[str, Any]:
    answer = await user(PROGRESS, {"id": item_id})
    assert "errors" not in answer, answer
    ingestion: dict[str, Any] = answer["data"]["libraryItem"]["ingestion"]
    return ingestion


async def until_indexed(user: GraphQLClient, item_id: str) -> dict[str, Any]:
    async def indexed() -> dict[str, Any] | None:
        ingestion = await progress_of(user, item_id)
        assert ingestion["state"] not in {"FAILED", "PARTIAL"}, ingestion
        return ingestion if ingestion["state"] == "INDEXED" else None

    result: dict[str, Any] = await until(indexed)
    return result


def points_in(settings: Settings) -> Counter[str]:
    """How many points hold each ISRC, read from the local-mode storage once the app has
    stopped (local mode locks its folder while a client has it open)."""
    client = QdrantClient(path=str(settings.libingest_data_dir / "qdrant"))
    try:
        isrcs: Counter[str] = Counter()
        offset: Any = None
        while True:
            records, offset = client.scroll(
                settings.qdrant_collection, limit=256, offset=offset, with_payload=["isrc"]
            )
            isrcs.update(str((record.payload or {})["isrc"]) for record in records)
            if offset is None:
                return isrcs
    finally:
        client.close()


async def ledger(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    async with engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(LEDGER)]


def assert_one_point_per_isrc(settings: Settings, tracks: Sequence[CatalogTrack]) -> None:
    points = points_in(settings)
    assert set(points) == {isrc.value for isrc in isrcs_of(tracks)}
    assert set(points.values()) == {1}


async def test_a_sample_album_added_locally_gets_every_track_indexed_once(
    run_app: AppRunner, settings: Settings, album_tracks: list[CatalogTrack]
) -> None:
    async with run_app() as app:
        alice = app.as_user("alice")
        item_id = await add_album(alice)

        ingestion = await until_indexed(alice, item_id)

        assert ingestion["tracksTotal"] == ALBUM_TRACKS
        assert ingestion["tracksIndexed"] == ALBUM_TRACKS
        assert ingestion["tracksFailed"] == ingestion["tracksSkipped"] == 0
        index = await app.track_index()
        assert await index.indexed(list(isrcs_of(album_tracks))) == isrcs_of(album_tracks)
    assert_one_point_per_isrc(settings, album_tracks)


async def test_the_same_album_added_by_another_user_causes_no_new_work(
    run_app: AppRunner, engine: AsyncEngine
) -> None:
    async with run_app() as app:
        alice, bob = app.as_user("alice"), app.as_user("bob")
        await until_indexed(alice, await add_album(alice))
        before = await ledger(engine)

        bobs_item = await add_album(bob)
        ingestion = await until_indexed(bob, bobs_item)

        assert ingestion["tracksTotal"] == ingestion["tracksIndexed"] == ALBUM_TRACKS
        # Nothing dispatched, re-indexed or even touched: every row as alice's ingestion left it.
        assert await ledger(engine) == before
        assert {row[1] for row in before} == {"indexed"}
        assert len(before) == ALBUM_TRACKS


class SlowIngestTrack(IngestTrack):
    """IngestTrack with a pause before each upsert, so that a test can stop the app while
    the album is part-way through."""

    async def upsert(self, document: TrackDocument, vectors: TrackVectors) -> None:
        await asyncio.sleep(0.05)
        await super().upsert(document, vectors)


def slow_ingestion(container: Container) -> None:
    container.ingest_track.override(
        providers.Singleton(
            SlowIngestTrack,
            container.uow_factory,
            container.catalog,
            container.embedder,
            container.lexical_encoder,
            container.track_index,
            container.clock,
        )
    )


@pytest.mark.parametrize("settings_overrides", [{"local_queue_concurrency": 1}], indirect=True)
async def test_an_app_stopped_mid_ingestion_finishes_the_album_after_a_restart(
    run_app: AppRunner,
    settings: Settings,
    engine: AsyncEngine,
    album_tracks: list[CatalogTrack],
) -> None:
    assert settings.local_queue_concurrency == 1
    async with run_app(slow_ingestion) as first:
        alice = first.as_user("alice")
        item_id = await add_album(alice)

        async def started() -> bool:
            indexed: int = (await progress_of(alice, item_id))["tracksIndexed"]
            return indexed > 0

        await until(started)
    states = Counter(row[1] for row in await ledger(engine))
    # The precondition of the test: the first app stopped with work left to do.
    assert 0 < states["indexed"] < ALBUM_TRACKS, states

    async with run_app() as second:
        ingestion = await until_indexed(second.as_user("alice"), item_id)
        assert ingestion["tracksTotal"] == ingestion["tracksIndexed"] == ALBUM_TRACKS
    assert Counter(row[1] for row in await ledger(engine)) == {"indexed": ALBUM_TRACKS}
    assert_one_point_per_isrc(settings, album_tracks)


async def test_every_indexed_sample_track_is_the_top_hit_for_its_exact_title(
    run_app: AppRunner, album_tracks: list[CatalogTrack]
) -> None:
    titles = Counter(track.title for track in album_tracks)
    async with run_app() as app:
        alice = app.as_user("alice")
        await until_indexed(alice, await add_album(alice))

        misses = []
        for track in album_tracks:
            answer = await alice(SEARCH, {"query": track.title, "limit": 5})
            assert "errors" not in answer, answer
            hits = answer["data"]["searchTracks"]
            top = hits[0] if hits else None
            if titles[track.title] == 1:
                found = top is not None and top["isrc"] == (track.isrc and track.isrc.value)
            else:  # a shared title: any track of that title may come first
                found = top is not None and top["title"].startswith(track.title)
            if not found:
                misses.append((track.title, top))
    assert misses == []


ADD_PLAYLIST = """
mutation Add($id: ID!) { addPlaylistToLibrary(playlistId: $id) {
  ... on AddToLibrarySuccess { item { id title } alreadyInLibrary } } }"""


async def test_the_sample_playlist_added_locally_is_indexed_but_its_isrc_less_tracks(
    run_app: AppRunner, settings: Settings
) -> None:
    # 43 items: a video (not a track), 42 tracks of which 3 lack a usable ISRC, 37 ISRCs.
    async with run_app() as app:
        alice = app.as_user("alice")
        added = await alice(ADD_PLAYLIST, {"id": SAMPLE_PLAYLIST_IDS[0]})
        item_id = added["data"]["addPlaylistToLibrary"]["item"]["id"]

        async def finished() -> dict[str, Any] | None:
            ingestion = await progress_of(alice, item_id)
            done = ingestion["state"] == "PARTIAL" and ingestion["tracksRequested"] == 0
            return ingestion if done else None

        ingestion = await until(finished)
        hits = await alice(SEARCH, {"query": "Sample Song 7", "limit": 1})

    assert ingestion == {
        "state": "PARTIAL",
        "tracksTotal": 42,
        "tracksRequested": 0,
        "tracksIndexed": 39,  # 37 ISRCs, two of them listed twice
        "tracksSkipped": 3,
        "tracksFailed": 0,
        "lastError": None,
    }
    assert hits["data"]["searchTracks"][0]["trackId"] == "900000307"
    points = points_in(settings)
    assert len(points) == 37
    assert set(points.values()) == {1}


@pytest.mark.parametrize(
    ("query", "limit"),
    [
        pytest.param("", 5, id="empty query"),
        pytest.param("   ", 5, id="blank query"),
        pytest.param("x" * 10_000, 5, id="10 kB query"),
        pytest.param("Sample Movement", 0, id="limit 0"),
        pytest.param("Sample Movement", 1000, id="limit 1000"),
        pytest.param("Sample Movement", -1, id="negative limit"),
    ],
)
async def test_a_search_out_of_bounds_answers_a_bad_user_input_error(
    run_app: AppRunner, query: str, limit: int
) -> None:
    async with run_app() as app:
        answer = await app.as_user("alice")(SEARCH, {"query": query, "limit": limit})
    assert answer["data"] is None
    assert [error["extensions"]["code"] for error in answer["errors"]] == ["BAD_USER_INPUT"]
