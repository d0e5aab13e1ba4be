"""Scheduling end to end: the real app over ASGI, its relay, PostgreSQL, Qdrant local mode, a
loopback TIDAL and a loopback Inngest Event API. Outcomes are read where a user and Inngest see
them: the events the Event API accepted, and the `ingestion` progress in GraphQL."""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from dependency_injector import providers
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.qdrant.track_index import QdrantTrackIndex
from application.ports.embedder import SparseVector
from application.ports.track_index import IndexedTrack, TrackVectors
from domain.values import CatalogId, Isrc
from entrypoints.app import create_app
from entrypoints.container import Container
from entrypoints.relay import Relay
from entrypoints.settings import Settings
from tests.e2e.conftest import GraphQLClient
from tests.faults.harness import libingest_command
from tests.support.loopback_inngest import InngestMode, LoopbackInngest
from tests.support.loopback_qdrant import LoopbackQdrant, QdrantMode
from tests.support.loopback_tidal import (
    Fault,
    LoopbackAlbum,
    LoopbackPlaylist,
    LoopbackTidal,
    LoopbackTrack,
    generated_album,
)

EVENT_NAME = "track/ingestion.requested"

ADD_ALBUM = """
mutation Add($id: ID!) { addAlbumToLibrary(albumId: $id) {
  ... on AddToLibrarySuccess { item { id } alreadyInLibrary } } }"""
ITEM = """
query Item($id: ID!) { libraryItem(id: $id) { title ingestion {
  state tracksTotal tracksRequested tracksIndexed tracksSkipped tracksFailed lastError } } }"""


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def tidal() -> Iterator[LoopbackTidal]:
    with LoopbackTidal() as server:
        yield server


@pytest.fixture
def inngest() -> Iterator[LoopbackInngest]:
    with LoopbackInngest() as server:
        yield server


@pytest.fixture
def settings_overrides(
    request: pytest.FixtureRequest, tidal: LoopbackTidal, inngest: LoopbackInngest
) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "tidal_client_id": tidal.client_id,
        "tidal_client_secret": tidal.client_secret,
        "tidal_api_base_url": tidal.base_url,
        "tidal_auth_url": tidal.auth_url,
        "tidal_requests_per_second": 1000.0,
        "tidal_burst": 100,
        "inngest_dev": "1",
        "inngest_event_api_base_url": inngest.url,
        "relay_sweep_seconds": 0.2,
    }
    if "unreachable_qdrant" in request.fixturenames:
        qdrant: LoopbackQdrant = request.getfixturevalue("unreachable_qdrant")
        overrides["qdrant_url"] = qdrant.url
    return overrides


# -- helpers ----------------------------------------------------------------------------------


def isrcs_of(album: LoopbackAlbum) -> list[str]:
    return [track.isrc for track in album.items if track.isrc is not None]


def event_id(isrc: str) -> str:
    return f"track-ingestion-requested:{isrc}"


def album_of(album_id: str, isrcs: Sequence[str | None]) -> LoopbackAlbum:
    """An album whose n-th track (id album_id+n) has the n-th of `isrcs`."""
    tracks = tuple(
        LoopbackTrack(
            id=str(int(album_id) + number),
            title=f"Track {number} of {album_id}",
            isrc=isrc,
            track_number=number,
        )
        for number, isrc in enumerate(isrcs, start=1)
    )
    return LoopbackAlbum(id=album_id, title=f"Album {album_id}", items=tuple(tracks))


def isrc_range(prefix: str, first: int, count: int) -> list[str]:
    return [f"{prefix}{number:05d}" for number in range(first, first + count)]


async def until(condition: Callable[[], Awaitable[Any]], seconds: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await condition()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def add_album(user: GraphQLClient, album_id: str) -> str:
    answer = await user(ADD_ALBUM, {"id": album_id})
    assert "errors" not in answer, answer
    return str(answer["data"]["addAlbumToLibrary"]["item"]["id"])


async def progress(user: GraphQLClient, item_id: str) -> dict[str, Any]:
    answer = await user(ITEM, {"id": item_id})
    assert "errors" not in answer, answer
    return dict(answer["data"]["libraryItem"]["ingestion"])


async def settled(user: GraphQLClient, item_id: str, seconds: float = 20.0) -> dict[str, Any]:
    """The item's progress once its scheduling finished (any state but PENDING)."""

    async def done() -> dict[str, Any] | None:
        current = await progress(user, item_id)
        return current if current["state"] != "PENDING" else None

    result: dict[str, Any] = await until(done, seconds)
    return result


async def events_reach(inngest: LoopbackInngest, count: int, seconds: float = 20.0) -> None:
    async def reached() -> bool:
        return len(inngest.unique_ids) >= count

    await until(reached, seconds)


async def ledger_states(engine: AsyncEngine) -> dict[str, str]:
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT isrc, state FROM isrc_ledger"))
        return {isrc: state for isrc, state in rows}


async def job_row(engine: AsyncEngine, item_id: str) -> tuple[str, int]:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT status, attempts FROM scheduling_jobs"
                    " WHERE library_item_id = CAST(:id AS uuid)"
                ),
                {"id": item_id},
            )
        ).one()
        return str(row[0]), int(row[1])


async def resolved(value: Any) -> Any:
    """A container provider's value: async resources (and what depends on them) are awaitable."""
    return await value if inspect.isawaitable(value) else value


async def new_relay(app: FastAPI, *, concurrency: int = 4) -> Relay:
    """A second, independent relay over the app's own wiring (a restarted process would be)."""
    container: Container = app.state.container
    return Relay(
        uow_factory=await resolved(container.uow_factory()),
        schedule=await resolved(container.schedule_ingestion()),
        dispatch=await resolved(container.dispatch_pending()),
        wakeups=await resolved(container.notifications()),
        clock=container.clock(),
        metrics=container.metrics(),
        concurrency=concurrency,
        sweep_interval=0.2,
    )


def assert_sent_once(inngest: LoopbackInngest, isrcs: list[str]) -> None:
    """Exactly one accepted event per ISRC in `isrcs`, and nothing else."""
    ids = [event.id for event in inngest.events]
    assert Counter(ids) == Counter(event_id(isrc) for isrc in dict.fromkeys(isrcs))


# -- the tests --------------------------------------------------------------------------------


async def test_a_120_track_album_sends_exactly_one_event_per_isrc_with_its_id_and_data(
    as_user: Callable[[str], GraphQLClient], tidal: LoopbackTidal, inngest: LoopbackInngest
) -> None:
    album = tidal.add_album(generated_album("510000", 120))
    alice = as_user("alice")
    item_id = await add_album(alice, album.id)

    state = await settled(alice, item_id)
    await events_reach(inngest, 120)

    assert state == {
        "state": "SCHEDULED",
        "tracksTotal": 120,
        "tracksRequested": 120,
        "tracksIndexed": 0,
        "tracksSkipped": 0,
        "tracksFailed": 0,
        "lastError": None,
    }
    assert_sent_once(inngest, isrcs_of(album))
    by_id = {event.id: event for event in inngest.events}
    for track in album.items:
        assert track.isrc is not None
        event = by_id[event_id(track.isrc)]
        assert event.name == EVENT_NAME
        assert event.data == {
            "isrc": track.isrc,
            "trackId": track.id,
            "albumId": album.id,
            "libraryItemId": item_id,
        }
    # 120 events in few requests: batches, not one request per track.
    assert inngest.request_count <= 6


async def test_the_same_album_added_by_a_second_user_sends_no_new_event(
    as_user: Callable[[str], GraphQLClient], tidal: LoopbackTidal, inngest: LoopbackInngest
) -> None:
    album = tidal.add_album(generated_album("520000", 120))
    alice, bob = as_user("alice"), as_user("bob")
    await settled(alice, await add_album(alice, album.id))
    await events_reach(inngest, 120)
    requests_before, tidal_calls_before = inngest.request_count, tidal.counts.api

    bobs_item = await add_album(bob, album.id)
    state = await settled(bob, bobs_item)

    assert state["state"] == "SCHEDULED"
    assert (state["tracksTotal"], state["tracksRequested"]) == (120, 120)
    assert inngest.request_count == requests_before
    assert_sent_once(inngest, isrcs_of(album))
    # The catalogue cache answered for the known album.
    assert tidal.counts.api == tidal_calls_before


async def test_two_albums_sharing_tracks_send_the_shared_isrcs_once(
    as_user: Callable[[str], GraphQLClient], tidal: LoopbackTidal, inngest: LoopbackInngest
) -> None:
    shared = isrc_range("QZSHR26", 1, 25)
    first = tidal.add_album(album_of("530000", isrc_range("QZONE26", 1, 20) + shared))
    # The shared ISRCs come first here and last there, on different pages and track ids.
    second = tidal.add_album(album_of("531000", shared + isrc_range("QZTWO26", 1, 30)))
    alice, bob = as_user("alice"), as_user("bob")

    items = await asyncio.gather(add_album(alice, first.id), add_album(bob, second.id))
    states = [await settled(alice, items[0]), await settled(bob, items[1])]
    await events_reach(inngest, 75)

    assert [s["state"] for s in states] == ["SCHEDULED", "SCHEDULED"]
    assert [(s["tracksTotal"], s["tracksRequested"]) for s in states] == [(45, 45), (55, 55)]
    assert_sent_once(inngest, isrcs_of(first) + isrcs_of(second))


async def test_an_album_with_a_repeated_isrc_sends_it_once_and_tracks_without_isrc_are_skipped(
    as_user: Callable[[str], GraphQLClient], tidal: LoopbackTidal, inngest: LoopbackInngest
) -> None:
    isrcs: list[str | None] = list(isrc_range("QZREP26", 1, 30))
    isrcs[24] = isrcs[2]  # the same recording twice, on another page
    isrcs[7] = isrcs[11] = None
    album = tidal.add_album(album_of("540000", isrcs))
    alice = as_user("alice")

    state = await settled(alice, await add_album(alice, album.id))
    await events_reach(inngest, 27)

    assert state["state"] == "PARTIAL"
    assert state["tracksTotal"] == 30
    assert state["tracksSkipped"] == 2
    # Both positions of the repeated ISRC are requested, through one request.
    assert state["tracksRequested"] == 28
    assert_sent_once(inngest, isrcs_of(album))
    assert len(inngest.events) == 27


async def test_isrcs_already_in_qdrant_are_not_sent_and_count_as_indexed(
    app: FastAPI,
    as_user: Callable[[str], GraphQLClient],
    tidal: LoopbackTidal,
    inngest: LoopbackInngest,
) -> None:
    album = tidal.add_album(generated_album("550000", 40, isrc_prefix="QZIDX26"))
    index: QdrantTrackIndex = await resolved(app.state.container.track_index())
    assert index.is_local
    preloaded = isrcs_of(album)[5:15]
    dimension = app.state.container.settings().embedding_dimension
    for position, isrc in enumerate(preloaded):
        track = IndexedTrack(
            isrc=Isrc(isrc),
            track_id=CatalogId(str(900 + position)),
            title="indexed elsewhere",
            artist_names=(),
            album_id=None,
            indexed_at=datetime.now(UTC),
        )
        dense = (1.0,) + (0.0,) * (dimension - 1)
        await index.upsert(track, TrackVectors(dense, SparseVector((1,), (1.0,))))
    alice = as_user("alice")

    state = await settled(alice, await add_album(alice, album.id))
    await events_reach(inngest, 30)

    assert state["state"] == "SCHEDULED"
    assert (state["tracksTotal"], state["tracksRequested"], state["tracksIndexed"]) == (40, 30, 10)
    assert_sent_once(inngest, [isrc for isrc in isrcs_of(album) if isrc not in preloaded])


@pytest.fixture(params=[QdrantMode.DOWN, QdrantMode.SLOW], ids=["refused", "slow"])
def unreachable_qdrant(request: pytest.FixtureRequest) -> Iterator[LoopbackQdrant]:
    """A Qdrant that holds the album's first ten ISRCs but cannot answer in time."""
    points = [Isrc(isrc).point_id for isrc in isrc_range("QZDWN26", 1, 10)]
    with LoopbackQdrant(collection="tracks", point_ids=points) as qdrant:
        qdrant.set_mode(request.param, delay_s=1.0)
        yield qdrant


async def test_with_qdrant_unreachable_every_track_is_sent(
    request: pytest.FixtureRequest,
    unreachable_qdrant: LoopbackQdrant,
    as_user: Callable[[str], GraphQLClient],
    tidal: LoopbackTidal,
    inngest: LoopbackInngest,
) -> None:
    album = tidal.add_album(generated_album("560000", 40, isrc_prefix="QZDWN26"))
    alice = as_user("alice")

    state = await settled(alice, await add_album(alice, album.id))
    await events_reach(inngest, 40)

    assert state["state"] == "SCHEDULED"
    assert (state["tracksRequested"], state["tracksIndexed"]) == (40, 0)
    assert_sent_once(inngest, isrcs_of(album))
    if request.node.callspec.params["unreachable_qdrant"] is QdrantMode.SLOW:
        # It was asked, and its (late) answer was not waited for.
        assert unreachable_qdrant.retrieve_requests


async def test_with_inngest_down_for_a_while_everything_is_sent_once_after_it_recovers(
    engine: AsyncEngine,
    as_user: Callable[[str], GraphQLClient],
    tidal: LoopbackTidal,
    inngest: LoopbackInngest,
) -> None:
    album = tidal.add_album(generated_album("570000", 120, isrc_prefix="QZOUT26"))
    inngest.set_mode(InngestMode.DOWN)
    alice = as_user("alice")

    item_id = await add_album(alice, album.id)
    state = await settled(alice, item_id)

    # Scheduling finished without the queue: every track is recorded, none accepted yet.
    assert state["state"] == "SCHEDULED"
    assert (state["tracksTotal"], state["tracksRequested"]) == (120, 120)
    assert set((await ledger_states(engine)).values()) == {"requested"}
    assert inngest.events == []

    inngest.set_mode(InngestMode.ACCEPT)
    await events_reach(inngest, 120, seconds=30)

    assert_sent_once(inngest, isrcs_of(album))
    assert len(inngest.unique_ids) == len(inngest.events) == 120

    async def all_dispatched() -> bool:
        return set((await ledger_states(engine)).values()) == {"dispatched"}

    await until(all_dispatched)


async def test_an_album_not_in_the_catalogue_fails_with_a_readable_error_and_is_not_retried(
    engine: AsyncEngine,
    as_user: Callable[[str], GraphQLClient],
    tidal: LoopbackTidal,
    inngest: LoopbackInngest,
) -> None:
    alice = as_user("alice")
    item_id = await add_album(alice, "580000")

    state = await settled(alice, item_id)

    assert state["state"] == "FAILED"
    assert state["lastError"] == "album 580000 is not in the catalogue"
    album_calls = tidal.counts.by_endpoint["album"]
    assert album_calls == 1
    await asyncio.sleep(1.0)  # five relay sweeps
    assert tidal.counts.by_endpoint["album"] == album_calls
    assert await job_row(engine, item_id) == ("failed", 1)
    assert (await progress(alice, item_id))["state"] == "FAILED"
    assert inngest.request_count == 0


async def test_tidal_failing_with_5xx_for_a_while_retries_the_job_until_it_completes(
    engine: AsyncEngine,
    as_user: Callable[[str], GraphQLClient],
    tidal: LoopbackTidal,
    inngest: LoopbackInngest,
) -> None:
    album = tidal.add_album(generated_album("590000", 120, isrc_prefix="QZ5XX26"))
    # More 503s in a row than the adapter retries one request (4 tries): the job itself fails
    # once, transiently, and runs again after its backoff.
    tidal.switches.faults.extend([Fault.server_error(503)] * 5)
    alice = as_user("alice")

    item_id = await add_album(alice, album.id)
    state = await settled(alice, item_id, seconds=30)
    await events_reach(inngest, 120)

    assert state["state"] == "SCHEDULED"
    assert (state["tracksTotal"], state["tracksRequested"]) == (120, 120)
    assert state["lastError"] is None
    assert await job_row(engine, item_id) == ("done", 2)
    assert not tidal.switches.faults
    assert_sent_once(inngest, isrcs_of(album))


async def test_a_relay_stopped_mid_job_and_replaced_completes_it_without_sending_twice(
    app: FastAPI,
    engine: AsyncEngine,
    as_user: Callable[[str], GraphQLClient],
    tidal: LoopbackTidal,
    inngest: LoopbackInngest,
) -> None:
    album = tidal.add_album(generated_album("600000", 120, isrc_prefix="QZCAN26"))
    tidal.switches.latency = 0.3  # six pages: about two seconds of catalogue
    alice = as_user("alice")
    item_id = await add_album(alice, album.id)

    # Until some rows are committed as dispatched (the Event API accepts a batch just before
    # the transaction that marks it commits).
    async def some_dispatched() -> bool:
        return "dispatched" in (await ledger_states(engine)).values()

    await until(some_dispatched)
    first_relay: Relay = await resolved(app.state.container.relay())
    await first_relay.stop()

    # It was stopped mid-job: the job is still pending and some tracks already went out.
    assert (await job_row(engine, item_id))[0] == "pending"
    assert (await progress(alice, item_id))["state"] == "PENDING"
    dispatched_before = {
        isrc for isrc, state in (await ledger_states(engine)).items() if state == "dispatched"
    }
    assert 0 < len(dispatched_before) < 120
    tidal.switches.latency = 0.02

    replacement = await new_relay(app)
    await replacement.start()
    try:
        state = await settled(alice, item_id)
        await events_reach(inngest, 120)
    finally:
        await replacement.stop()

    assert state["state"] == "SCHEDULED"
    assert (state["tracksTotal"], state["tracksRequested"]) == (120, 120)
    assert set(inngest.unique_ids) == {event_id(isrc) for isrc in isrcs_of(album)}
    sent = Counter(event.id for event in inngest.events)
    assert all(sent[event_id(isrc)] == 1 for isrc in dispatched_before)


@pytest.fixture
async def second_app(settings: Settings, app: FastAPI, tmp_path: Path) -> AsyncIterator[FastAPI]:
    """Another process of the service on the same database, with its own relay."""
    data_dir = tmp_path / "second-process"
    data_dir.mkdir()
    container = Container()
    container.settings.override(
        providers.Object(settings.model_copy(update={"libingest_data_dir": data_dir}))
    )
    application = create_app(container)
    async with application.router.lifespan_context(application):
        yield application


async def test_two_processes_scheduling_albums_that_share_isrcs_send_each_isrc_once(
    app: FastAPI,
    second_app: FastAPI,
    as_user: Callable[[str], GraphQLClient],
    tidal: LoopbackTidal,
    inngest: LoopbackInngest,
    token_for: Callable[..., str],
) -> None:
    tidal.switches.latency = 0.02
    shared = isrc_range("QZTWN26", 1, 20)  # the first page of every album
    albums = [
        tidal.add_album(
            album_of(str(610000 + 1000 * n), shared + isrc_range(f"QZA{n:02d}26", 1, 20))
        )
        for n in range(6)
    ]
    transport = httpx.ASGITransport(app=second_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://second.test") as other:
        users = [
            as_user(f"user-{n}") if n % 2 else GraphQLClient(other, token_for(f"user-{n}"))
            for n in range(len(albums))
        ]
        items = await asyncio.gather(
            *(add_album(user, album.id) for user, album in zip(users, albums, strict=True))
        )
        states = [await settled(user, item) for user, item in zip(users, items, strict=True)]

    everything = [isrc for album in albums for isrc in isrcs_of(album)]
    await events_reach(inngest, len(set(everything)))
    assert {s["state"] for s in states} == {"SCHEDULED"}
    assert {(s["tracksTotal"], s["tracksRequested"]) for s in states} == {(40, 40)}
    assert_sent_once(inngest, everything)
    assert len(inngest.events) == 20 + 6 * 20


ADD_TRACK = """
mutation Add($id: ID!) { addTrackToLibrary(trackId: $id) {
  ... on AddToLibrarySuccess { item { id } alreadyInLibrary } } }"""


def singles(tidal: LoopbackTidal, first_id: int, isrcs: list[str]) -> list[str]:
    """One single-track release per ISRC, with consecutive track ids from `first_id`."""
    track_ids = [str(first_id + number) for number in range(len(isrcs))]
    for number, (track_id, isrc) in enumerate(zip(track_ids, isrcs, strict=True)):
        tidal.add_track(LoopbackTrack(id=track_id, title=f"Single {number}", isrc=isrc))
    return track_ids


async def added_while_no_relay_runs(
    app: FastAPI, user: GraphQLClient, track_ids: list[str]
) -> list[str]:
    """The tracks' item ids, added with the app's relay stopped, so that one claim of the next
    relay takes them all."""
    await (await resolved(app.state.container.relay())).stop()
    items = []
    for track_id in track_ids:
        answer = await user(ADD_TRACK, {"id": track_id})
        assert "errors" not in answer, answer
        items.append(str(answer["data"]["addTrackToLibrary"]["item"]["id"]))
    return items


async def test_track_jobs_claimed_together_are_scheduled_as_one_batch(
    app: FastAPI,
    as_user: Callable[[str], GraphQLClient],
    tidal: LoopbackTidal,
    inngest: LoopbackInngest,
) -> None:
    # Eight tracks, two of them sharing an ISRC, and a ninth TIDAL does not know.
    isrcs = isrc_range("QZBTC26", 1, 8)
    isrcs[7] = isrcs[0]
    track_ids = singles(tidal, 700_001, isrcs)
    unknown = "799999"
    alice = as_user("alice")
    items = await added_while_no_relay_runs(app, alice, [*track_ids, unknown])

    relay = await new_relay(app)
    await relay.start()
    try:
        states = [await settled(alice, item_id) for item_id in items]
        await events_reach(inngest, 7)
    finally:
        await relay.stop()

    assert [state["state"] for state in states] == ["SCHEDULED"] * 8 + ["FAILED"]
    assert states[-1]["lastError"] == f"track {unknown} is not in the catalogue"
    # Both items sharing the ISRC count it as requested; it was sent once.
    assert [state["tracksRequested"] for state in states[:8]] == [1] * 8
    assert_sent_once(inngest, isrcs)
    # One catalogue request, and one Event API request, for the whole batch.
    assert tidal.counts.by_endpoint["tracks"] == 1
    assert tidal.counts.by_endpoint["track"] == 0
    assert inngest.request_count == 1


async def test_a_relay_stopped_mid_batch_hands_every_lease_back_and_the_next_finishes(
    app: FastAPI,
    engine: AsyncEngine,
    as_user: Callable[[str], GraphQLClient],
    tidal: LoopbackTidal,
    inngest: LoopbackInngest,
) -> None:
    isrcs = isrc_range("QZBST26", 1, 5)
    alice = as_user("alice")
    items = await added_while_no_relay_runs(app, alice, singles(tidal, 710_001, isrcs))
    tidal.switches.latency = 5.0  # the batch waits on its catalogue lookup while it is stopped

    first = await new_relay(app)
    await first.start()

    async def leased_to_the_first() -> bool:
        async with engine.connect() as connection:
            holders = await connection.execute(
                text("SELECT locked_by FROM scheduling_jobs WHERE status = 'pending'")
            )
            return [holder for (holder,) in holders] == [first.worker_id] * 5

    await until(leased_to_the_first)
    await first.stop()

    async with engine.connect() as connection:
        rows = (
            await connection.execute(text("SELECT status, locked_by FROM scheduling_jobs"))
        ).all()
    assert [tuple(row) for row in rows] == [("pending", None)] * 5

    tidal.switches.latency = 0.0
    replacement = await new_relay(app)
    await replacement.start()
    try:
        states = [await settled(alice, item_id) for item_id in items]
        await events_reach(inngest, 5)
    finally:
        await replacement.stop()
    assert [state["state"] for state in states] == ["SCHEDULED"] * 5
    assert_sent_once(inngest, isrcs)


# -- playlists (ADR 0029) ---------------------------------------------------------------------

ADD_PLAYLIST = """
mutation Add($id: ID!) { addPlaylistToLibrary(playlistId: $id) {
  __typename
  ... on AddToLibrarySuccess { item { id kind catalogId title } alreadyInLibrary }
  ... on InvalidCatalogId { message catalogId } } }"""
PLAYLIST_ID = "5a3b1e00-0000-4000-8000-00000000e001"


async def add_playlist(user: GraphQLClient, playlist_id: str) -> tuple[str, bool]:
    answer = await user(ADD_PLAYLIST, {"id": playlist_id})
    assert "errors" not in answer, answer
    added = answer["data"]["addPlaylistToLibrary"]
    assert added["__typename"] == "AddToLibrarySuccess", added
    return str(added["item"]["id"]), bool(added["alreadyInLibrary"])


def playlist_of(*groups: Sequence[LoopbackTrack]) -> LoopbackPlaylist:
    return LoopbackPlaylist(
        PLAYLIST_ID, "A loopback playlist", tuple(item for group in groups for item in group)
    )


async def test_a_playlist_with_repeats_and_videos_sends_one_event_per_isrc_in_its_order(
    as_user: Callable[[str], GraphQLClient], tidal: LoopbackTidal, inngest: LoopbackInngest
) -> None:
    album = tidal.add_album(generated_album("610000", 50, videos_at=[4, 30]))
    items = (*album.items[:45], album.items[2], album.items[40])  # two tracks listed twice
    tidal.add_playlist(playlist_of(items))
    alice = as_user("alice")

    item_id, already = await add_playlist(alice, PLAYLIST_ID.upper())
    state = await settled(alice, item_id)
    await events_reach(inngest, 43)

    assert not already
    tracks = [item for item in items if item.kind == "tracks"]
    assert state == {
        "state": "SCHEDULED",
        "tracksTotal": len(tracks),
        "tracksRequested": len(tracks),
        "tracksIndexed": 0,
        "tracksSkipped": 0,
        "tracksFailed": 0,
        "lastError": None,
    }
    assert_sent_once(inngest, [item.isrc for item in tracks if item.isrc is not None])
    assert [event.id for event in inngest.events] == [
        event_id(isrc) for isrc in dict.fromkeys(t.isrc for t in tracks if t.isrc is not None)
    ]
    # The events name each track's own album and the playlist item, never the playlist's id.
    assert {event.data["albumId"] for event in inngest.events} == {album.id}
    assert {event.data["libraryItemId"] for event in inngest.events} == {item_id}
    assert tidal.counts.by_endpoint["playlist"] == 1
    assert tidal.counts.by_endpoint["playlist_items"] == 2


async def test_re_adding_a_changed_playlist_sends_only_the_tracks_new_since_and_relinks_it(
    as_user: Callable[[str], GraphQLClient], tidal: LoopbackTidal, inngest: LoopbackInngest
) -> None:
    album = tidal.add_album(generated_album("620000", 40))
    other = tidal.add_album(generated_album("621000", 10, isrc_prefix="QZOTH26"))
    alice, bob = as_user("alice"), as_user("bob")
    await settled(bob, await add_album(bob, other.id))  # the other album's ISRCs are settled
    tidal.add_playlist(playlist_of(album.items[:20]))
    item_id, _ = await add_playlist(alice, PLAYLIST_ID)
    await settled(alice, item_id)
    await events_reach(inngest, 30)
    reads_before = tidal.counts.by_endpoint["playlist"]
    # Two tracks removed, five added, and two of the other album's tracks listed as well.
    tidal.add_playlist(playlist_of(album.items[2:25], other.items[:2]))

    again, already = await add_playlist(alice, PLAYLIST_ID)
    state = await settled(alice, item_id)
    await events_reach(inngest, 35)

    assert (again, already) == (item_id, True)
    assert tidal.counts.by_endpoint["playlist"] == reads_before + 1
    assert (state["state"], state["tracksTotal"], state["tracksRequested"]) == (
        "SCHEDULED",
        25,
        25,
    )
    assert_sent_once(inngest, isrcs_of(other) + isrcs_of(album)[:25])
    assert len(inngest.events) == 35


async def test_re_adding_an_unchanged_playlist_reads_it_again_and_sends_nothing(
    as_user: Callable[[str], GraphQLClient], tidal: LoopbackTidal, inngest: LoopbackInngest
) -> None:
    album = tidal.add_album(generated_album("630000", 25))
    tidal.add_playlist(playlist_of(album.items))
    alice = as_user("alice")
    item_id, _ = await add_playlist(alice, PLAYLIST_ID)
    first = await settled(alice, item_id)
    await events_reach(inngest, 25)
    requests_before = inngest.request_count

    await add_playlist(alice, PLAYLIST_ID)
    second = await settled(alice, item_id)

    assert second == first
    assert inngest.request_count == requests_before
    assert tidal.counts.by_endpoint["playlist"] == 2


async def test_a_playlist_not_in_the_catalogue_fails_with_a_readable_error(
    engine: AsyncEngine,
    as_user: Callable[[str], GraphQLClient],
    tidal: LoopbackTidal,
    inngest: LoopbackInngest,
) -> None:
    alice = as_user("alice")
    item_id, _ = await add_playlist(alice, PLAYLIST_ID)

    state = await settled(alice, item_id)

    assert state["state"] == "FAILED"
    assert state["lastError"] == f"playlist {PLAYLIST_ID} is not in the catalogue"
    assert await job_row(engine, item_id) == ("failed", 1)
    assert inngest.request_count == 0


def run_libingest(args: list[str], database_url: str, data_dir: Path) -> str:
    """The real `libingest` command on the test's database, as an operator runs it."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("INNGEST_", "QDRANT_", "TIDAL_", "LIBINGEST_", "RELAY_"))
        and key not in {"DATABASE_URL", "TEST_DATABASE_URL"}
    }
    env |= {"DATABASE_URL": database_url, "LIBINGEST_DATA_DIR": str(data_dir)}
    done = subprocess.run(
        [*libingest_command(), *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_libingest_resync_reads_the_playlists_again_and_sends_only_new_tracks(
    as_user: Callable[[str], GraphQLClient],
    tidal: LoopbackTidal,
    inngest: LoopbackInngest,
    database_url: str,
    tmp_path: Path,
) -> None:
    album = tidal.add_album(generated_album("640000", 30))
    tidal.add_playlist(playlist_of(album.items[:10]))
    alice = as_user("alice")
    item_id, _ = await add_playlist(alice, PLAYLIST_ID)
    await settled(alice, item_id)
    await events_reach(inngest, 10)
    tidal.add_playlist(playlist_of(album.items[5:12]))  # five gone, two new

    printed = await asyncio.to_thread(run_libingest, ["resync"], database_url, tmp_path)
    # Generous: the command is a process of its own, started on a machine others share.
    await events_reach(inngest, 12, seconds=60)
    state = await settled(alice, item_id, seconds=60)

    assert printed.startswith("1 playlists put back")
    assert (state["tracksTotal"], state["tracksRequested"]) == (7, 7)
    assert_sent_once(inngest, isrcs_of(album)[:12])
    assert tidal.counts.by_endpoint["playlist"] == 2
