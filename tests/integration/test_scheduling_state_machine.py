"""A Hypothesis state machine over the real scheduling use cases on real PostgreSQL.

Users add albums and tracks and remove them; tracks get indexed; the queue, the index and the
catalogue go down and come back; time passes; the relay takes one step at a time (claim,
ScheduleIngestion, DispatchPending), either one job of any kind or as the relay does it: claims
by kind, an album job alone and the track jobs together as one batch.
The catalogue, the index and the queue are plain fakes;
everything else (unit of work, outbox, ledger, progress) is the production code. After every
step the database is checked against a plain-Python model of the libraries."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.database import create_engine, create_pool
from adapters.postgres.library_additions import PostgresLibraryAdditions
from adapters.postgres.unit_of_work import PostgresUnitOfWorkFactory
from application.errors import LibraryItemNotFound
from application.ports.catalog import (
    AlbumPage,
    CatalogAlbum,
    CatalogPlaylist,
    CatalogTrack,
)
from application.ports.metrics import NoMetrics
from application.ports.unit_of_work import UnitOfWorkFactory
from application.use_cases.add_album_to_library import (
    AddAlbumToLibrary,
    AddAlbumToLibraryCommand,
)
from application.use_cases.add_playlist_to_library import (
    AddPlaylistToLibrary,
    AddPlaylistToLibraryCommand,
)
from application.use_cases.add_track_to_library import (
    AddTrackToLibrary,
    AddTrackToLibraryCommand,
)
from application.use_cases.dispatch_pending import DispatchPending
from application.use_cases.remove_from_library import (
    RemoveFromLibrary,
    RemoveFromLibraryCommand,
)
from application.use_cases.schedule_ingestion import (
    JobOutcome,
    ScheduleIngestion,
    ScheduleIngestionCommand,
)
from domain.library import PAGED_KINDS, LibraryItemKind
from domain.values import CatalogId, Isrc, LibraryItemId
from tests.unit.fakes import FakeCatalog, FakeClock, FakeIndex, FakeQueue

T = TypeVar("T")

# -- the catalogue: a few small albums whose ISRCs overlap ----------------------------------------


def _isrc(number: int) -> Isrc:
    return Isrc(f"QZSTM26{number:05d}")


# album id -> its tracks in order: (track id, ISRC number or None when it has no ISRC)
_ALBUMS: dict[str, list[tuple[str, int | None]]] = {
    "1000": [("1001", 1), ("1002", 2), ("1003", 3), ("1004", None), ("1005", 4), ("1006", 5)],
    "2000": [("2001", 4), ("2002", 5), ("2003", 6), ("2004", 5), ("2005", 7), ("2006", 8)],
    "3000": [("3001", 8), ("3002", 9), ("3003", 1), ("3004", None), ("3005", 10)],
}
_MISSING_ALBUM = "4000"
_MISSING_TRACK = "9999"
_TRACKS: dict[str, tuple[int | None, str]] = {
    track_id: (number, album_id)
    for album_id, tracks in _ALBUMS.items()
    for track_id, number in tracks
}
# One playlist (ADR 0029) that changes: each change flips it between these two versions, the
# second adding two tracks to the first. Both repeat an ISRC and hold a track without one.
_PLAYLIST = "5a3b1e00-0000-4000-8000-00000000f001"
_PLAYLIST_VERSIONS = (
    ["1001", "2002", "2004", "1005", "3004", "1001"],
    ["1001", "2002", "2004", "1005", "3004", "1001", "3002", "3005"],
)
_PAGE_SIZE = 2
USERS = ("ana", "ben", "cho")
ALL_ISRCS = sorted({n for tracks in _ALBUMS.values() for _, n in tracks if n is not None})


def isrcs_of(kind: LibraryItemKind, catalog_id: str, changes: int = 0) -> set[Isrc]:
    """What the model expects the item's tracks to be (empty for what the catalogue lacks); a
    playlist's as they were after `changes` changes."""
    if kind is LibraryItemKind.ALBUM:
        numbers = [n for _, n in _ALBUMS.get(catalog_id, [])]
    elif kind is LibraryItemKind.PLAYLIST:
        numbers = [_TRACKS[t][0] for t in _PLAYLIST_VERSIONS[changes % 2]]
    else:
        numbers = [_TRACKS[catalog_id][0]] if catalog_id in _TRACKS else []
    return {_isrc(n) for n in numbers if n is not None}


def tracks_of(kind: LibraryItemKind, catalog_id: str, changes: int = 0) -> int:
    if kind is LibraryItemKind.ALBUM:
        return len(_ALBUMS.get(catalog_id, []))
    if kind is LibraryItemKind.PLAYLIST:
        return len(_PLAYLIST_VERSIONS[changes % 2])
    return 1 if catalog_id in _TRACKS else 0


def _track(track_id: str) -> CatalogTrack:
    number, album_id = _TRACKS[track_id]
    return CatalogTrack(
        catalog_id=CatalogId(track_id),
        isrc=_isrc(number) if number is not None else None,
        title=f"Track {track_id}",
        artist_names=("Fake Artist",),
        album_id=CatalogId(album_id),
    )


def playlist_version(changes: int) -> tuple[CatalogPlaylist, list[CatalogTrack]]:
    return (
        CatalogPlaylist(CatalogId(_PLAYLIST), f"Playlist after {changes} changes"),
        [_track(track_id) for track_id in _PLAYLIST_VERSIONS[changes % 2]],
    )


def fake_catalog() -> FakeCatalog:
    albums = [
        (
            CatalogAlbum(CatalogId(album_id), f"Album {album_id}", ("Fake Artist",)),
            [_track(track_id) for track_id, _ in tracks],
        )
        for album_id, tracks in _ALBUMS.items()
    ]
    return FakeCatalog(albums, page_size=_PAGE_SIZE, playlists=[playlist_version(0)])


# -- the database ---------------------------------------------------------------------------------

_DATABASE: dict[str, str] = {}
_EMPTY_TABLES = """
SELECT string_agg(format('%I', tablename), ', ')
FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'
"""


@pytest.fixture(scope="module", autouse=True)
def _database_for_machines(database_url: str) -> Iterator[None]:
    """The session's migrated database, for machines that make their own engine and loop."""
    _DATABASE["url"] = database_url
    yield
    _DATABASE.clear()


@dataclass(frozen=True)
class ModelItem:
    user: str
    kind: LibraryItemKind
    catalog_id: str


# -- the machine ----------------------------------------------------------------------------------


class SchedulingMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # asyncpg connections belong to one event loop: each machine has its own loop and
        # engine, and runs every step to completion on it.
        self.loop = asyncio.new_event_loop()
        self.engine: AsyncEngine = create_engine(_DATABASE["url"], pool_size=2)
        self.run(self._empty_database())
        self.clock = FakeClock(datetime(2026, 3, 1, tzinfo=UTC), step=timedelta(milliseconds=1))
        self.catalog = fake_catalog()
        self.index = FakeIndex()
        self.queue = FakeQueue(max_batch=3)
        # mypy reads the UnitOfWork protocol's attributes as invariant, so the Postgres unit of
        # work (whose `jobs` is a PostgresSchedulingJobs) needs this cast to pass as one.
        uow_factory = cast(UnitOfWorkFactory, PostgresUnitOfWorkFactory(self.engine))
        self.uow_factory = uow_factory
        self.pool = self.run(create_pool(_DATABASE["url"], size=2))
        additions = PostgresLibraryAdditions(self.pool)
        self.add_album = AddAlbumToLibrary(additions, self.clock)
        self.add_track = AddTrackToLibrary(additions, self.clock)
        self.add_playlist = AddPlaylistToLibrary(additions, self.clock)
        # The playlist's changes so far; for each playlist item, the changes it was last added
        # after (a re-add asks for at least that version) and the version its last run read.
        self.playlist_changes = 0
        self.asked: dict[LibraryItemId, int] = {}
        self.synced: dict[LibraryItemId, int] = {}
        self.remove = RemoveFromLibrary(uow_factory)
        self.dispatch = DispatchPending(uow_factory, self.queue, self.clock, NoMetrics())
        self.schedule = ScheduleIngestion(
            uow_factory=uow_factory,
            catalog=self.catalog,
            index=self.index,
            dispatch=self.dispatch,
            clock=self.clock,
            metrics=NoMetrics(),
        )
        self.model: dict[LibraryItemId, ModelItem] = {}

    def teardown(self) -> None:
        try:
            self.run(self.engine.dispose())
            self.run(self.pool.close())
        finally:
            self.loop.close()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    async def _empty_database(self) -> None:
        async with self.engine.begin() as connection:
            names = (await connection.exec_driver_sql(_EMPTY_TABLES)).scalar()
            if names:
                await connection.exec_driver_sql(f"TRUNCATE {names} CASCADE")

    # -- reading the database ---------------------------------------------------------------

    async def _ledger(self) -> dict[Isrc, str]:
        async with self.engine.connect() as connection:
            rows = await connection.execute(text("SELECT isrc, state FROM isrc_ledger"))
            return {Isrc(isrc): state for isrc, state in rows}

    async def _jobs(self) -> dict[LibraryItemId, str]:
        async with self.engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT library_item_id, status FROM scheduling_jobs")
            )
            return {LibraryItemId(item_id): status for item_id, status in rows}

    async def _items(self) -> dict[LibraryItemId, ModelItem]:
        async with self.engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT id, user_id, kind, catalog_id FROM library_items")
            )
            return {
                LibraryItemId(item_id): ModelItem(user, LibraryItemKind(kind), catalog_id)
                for item_id, user, kind, catalog_id in rows
            }

    # -- rules: the users ---------------------------------------------------------------------

    @rule(
        user=st.sampled_from(USERS),
        album_id=st.sampled_from([*_ALBUMS, _MISSING_ALBUM]),
    )
    def add_an_album(self, user: str, album_id: str) -> None:
        added = self.run(self.add_album(AddAlbumToLibraryCommand(user, album_id)))
        self._note_add(
            added.item.id, added.already_in_library, user, LibraryItemKind.ALBUM, album_id
        )

    @rule(
        user=st.sampled_from(USERS),
        track_id=st.sampled_from([*sorted(_TRACKS), _MISSING_TRACK]),
    )
    def add_a_track(self, user: str, track_id: str) -> None:
        added = self.run(self.add_track(AddTrackToLibraryCommand(user, track_id)))
        self._note_add(
            added.item.id, added.already_in_library, user, LibraryItemKind.TRACK, track_id
        )

    @rule(user=st.sampled_from(USERS))
    def add_the_playlist(self, user: str) -> None:
        added = self.run(self.add_playlist(AddPlaylistToLibraryCommand(user, _PLAYLIST)))
        self._note_add(
            added.item.id, added.already_in_library, user, LibraryItemKind.PLAYLIST, _PLAYLIST
        )
        self.asked[added.item.id] = self.playlist_changes

    @rule()
    def the_playlist_changes(self) -> None:
        self.playlist_changes += 1
        self.catalog.playlists[CatalogId(_PLAYLIST)] = playlist_version(self.playlist_changes)

    def _changes_read(self, item_id: LibraryItemId) -> int:
        """The version of the playlist the item's last finished run read."""
        return self.synced.get(item_id, 0)

    def _note_add(
        self,
        item_id: LibraryItemId,
        already: bool,
        user: str,
        kind: LibraryItemKind,
        catalog_id: str,
    ) -> None:
        expected = ModelItem(user, kind, catalog_id)
        existing = [i for i, item in self.model.items() if item == expected]
        assert already == bool(existing)
        if existing:
            assert existing == [item_id]
        self.model[item_id] = expected

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def remove_an_item(self, data: st.DataObject) -> None:
        item_id = data.draw(st.sampled_from(sorted(self.model, key=str)))
        owner = self.model[item_id].user
        stranger = next(user for user in USERS if user != owner)
        # Another user's id answers as an unknown one and changes nothing.
        with pytest.raises(LibraryItemNotFound):
            self.run(self.remove(RemoveFromLibraryCommand(stranger, str(item_id))))
        self.run(self.remove(RemoveFromLibraryCommand(owner, str(item_id))))
        del self.model[item_id]

    # -- rules: the world ---------------------------------------------------------------------

    @rule(number=st.sampled_from(ALL_ISRCS))
    def a_track_gets_indexed(self, number: int) -> None:
        """What the worker does once it ingested a track: the index holds it, the ledger says so."""
        isrc = _isrc(number)
        self.index.held.add(isrc)

        async def mark() -> None:
            async with self.uow_factory() as uow:
                await uow.ledger.mark_indexed(isrc, now=self.clock.now())
                await uow.commit()

        self.run(mark())

    @rule(up=st.booleans())
    def the_queue_goes(self, up: bool) -> None:
        self.queue.up = up

    @rule(up=st.booleans())
    def the_index_goes(self, up: bool) -> None:
        self.index.up = up

    @rule(up=st.booleans())
    def the_catalogue_goes(self, up: bool) -> None:
        self.catalog.up = up

    @rule(minutes=st.integers(min_value=1, max_value=15))
    def time_passes(self, minutes: int) -> None:
        # Past every backoff cap (10 min for jobs, 2 min for dispatches) at most, and the whole
        # run stays far inside the 24 h schedule window.
        self.clock.advance(timedelta(minutes=minutes))

    # -- rules: the relay ---------------------------------------------------------------------

    @rule(batched=st.booleans())
    def a_relay_step(self, batched: bool) -> None:
        self.run(self._relay_step(batched=batched))

    async def _relay_step(self, *, batched: bool) -> bool:
        """One claim, its jobs, and a dispatch sweep; checks what this step recorded and sent.
        True when it did anything. `batched` claims as the relay does: by kind, an album job
        alone and up to three track jobs as one batch."""
        ledger_before = await self._ledger()
        sent_before = len(self.queue.accepted)
        held_by_index = set(self.index.held) if self.index.up else set()
        lease = timedelta(seconds=60)
        async with self.uow_factory() as uow:
            now = self.clock.now()
            if batched:
                jobs = await uow.jobs.claim(
                    worker="relay", limit=1, lease=lease, now=now, kinds=PAGED_KINDS
                )
                tracks = await uow.jobs.claim(
                    worker="relay", limit=3, lease=lease, now=now, kinds=[LibraryItemKind.TRACK]
                )
            else:
                jobs = await uow.jobs.claim(worker="relay", limit=1, lease=lease, now=now)
                tracks = []
            await uow.commit()
        for batch in [(job,) for job in jobs] + ([tuple(tracks)] if tracks else []):
            outcomes = await self.schedule(
                ScheduleIngestionCommand(jobs=batch, worker="relay", lease=lease)
            )
            assert set(outcomes) == {job.item_id for job in batch}
            assert JobOutcome.LOST_LEASE not in outcomes.values()
            for item_id, outcome in outcomes.items():
                if outcome is JobOutcome.DONE and self._kind(item_id) is LibraryItemKind.PLAYLIST:
                    self.synced[item_id] = self.playlist_changes  # what this run read
        assert {self._kind(job.item_id) for job in tracks} <= {LibraryItemKind.TRACK}
        assert {self._kind(job.item_id) for job in jobs if batched} <= PAGED_KINDS
        report = await self.dispatch()
        ledger_after = await self._ledger()

        recorded = {
            isrc
            for isrc, state in ledger_after.items()
            if state in ("requested", "dispatched") and isrc not in ledger_before
        }
        # Nothing the index answered for (when it could answer) is recorded as a request.
        assert not recorded & held_by_index, recorded & held_by_index
        for request in self.queue.accepted[sent_before:]:
            before = ledger_before.get(request.isrc)
            # Sent only what was recorded as a request, never what the ledger knew indexed.
            assert request.isrc in recorded or before == "requested", (request.isrc, before)
            assert ledger_after[request.isrc] == "dispatched"
        return bool(jobs or tracks) or report.sent > 0

    def _kind(self, item_id: LibraryItemId) -> LibraryItemKind | None:
        item = self.model.get(item_id)
        return item.kind if item is not None else None

    @precondition(lambda self: self.queue.up and self.catalog.up)
    @rule(batched=st.booleans())
    def the_relay_catches_up(self, batched: bool) -> None:
        """With the queue and the catalogue up, enough time and steps leave nothing pending."""

        async def catch_up() -> None:
            for _ in range(50):
                self.clock.advance(timedelta(minutes=11))
                if not await self._relay_step(batched=batched):
                    break
            else:
                raise AssertionError("the relay never ran out of work")

        self.run(catch_up())
        ledger = self.run(self._ledger())
        jobs = self.run(self._jobs())
        assert "requested" not in ledger.values()
        for item_id, item in self.model.items():
            known = tracks_of(item.kind, item.catalog_id) > 0
            assert jobs[item_id] == ("done" if known else "failed"), (item, jobs[item_id])
            if item.kind is LibraryItemKind.PLAYLIST:
                # A re-add is never lost: the last run read at least the version re-added.
                assert self._changes_read(item_id) >= self.asked[item_id], item

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def every_add_is_committed_and_every_removal_too(self) -> None:
        assert self.run(self._items()) == self.model

    @invariant()
    def no_isrc_is_sent_twice(self) -> None:
        ids = [request.idempotency_key for request in self.queue.accepted]
        assert len(ids) == len(set(ids))

    @invariant()
    def every_track_of_a_scheduled_item_is_sent_indexed_or_pending(self) -> None:
        ledger = self.run(self._ledger())
        jobs = self.run(self._jobs())
        sent = {request.isrc for request in self.queue.accepted}
        # A dispatched row was accepted by the queue, and only those were.
        assert {i for i, state in ledger.items() if state == "dispatched"} <= sent
        assert sent <= set(ledger)
        pending = {i for i, state in ledger.items() if state == "requested"}
        indexed = {i for i, state in ledger.items() if state == "indexed"}
        for item_id, item in self.model.items():
            status = jobs[item_id]
            if status == "failed":
                assert tracks_of(item.kind, item.catalog_id) == 0, item
            if status != "done":
                continue
            read = self._changes_read(item_id)
            missing = isrcs_of(item.kind, item.catalog_id, read) - sent - indexed - pending
            assert not missing, (item, missing)

    @invariant()
    def progress_counts_every_track_of_a_scheduled_item(self) -> None:
        async def read() -> None:
            async with self.uow_factory() as uow:
                progress = await uow.progress.for_items(list(self.model))
            for item_id, item in self.model.items():
                counts = progress[item_id]
                if counts.scheduling.value != "done":
                    continue
                read = self._changes_read(item_id)
                assert counts.tracks_total == tracks_of(item.kind, item.catalog_id, read)
                assert (
                    counts.tracks_requested + counts.tracks_indexed + counts.tracks_skipped
                    == counts.tracks_total
                ), (item, counts)

        self.run(read())


SchedulingMachine.TestCase.settings = settings(
    max_examples=20,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
TestScheduling = SchedulingMachine.TestCase


def test_the_fakes_speak_the_ports() -> None:
    """The catalogue's pages and the queue's batches behave as the ports promise."""

    async def pages() -> list[AlbumPage]:
        return [page async for page in fake_catalog().album_pages(CatalogId("2000"))]

    got = asyncio.run(pages())
    assert [len(page.tracks) for page in got] == [2, 2, 2]
    assert [page.is_last for page in got] == [False, False, True]
    assert uuid.UUID(_isrc(1).point_id)


@pytest.mark.parametrize("batched", [False, True])
def test_a_changed_playlist_added_again_is_read_again_in_the_machine(batched: bool) -> None:
    """One run of the machine the random ones may take long to find: the playlist added,
    scheduled, changed, added again, and caught up; then every invariant."""
    machine = SchedulingMachine()
    try:
        machine.add_the_playlist("ana")
        machine.the_relay_catches_up(batched)
        machine.the_playlist_changes()
        machine.add_the_playlist("ana")
        machine.the_relay_catches_up(batched)

        [item_id] = machine.model
        assert machine.synced[item_id] == 1
        machine.every_add_is_committed_and_every_removal_too()
        machine.no_isrc_is_sent_twice()
        machine.every_track_of_a_scheduled_item_is_sent_indexed_or_pending()
        machine.progress_counts_every_track_of_a_scheduled_item()
    finally:
        machine.teardown()
