"""Resync, the operator's re-read of playlists (ADR 0029), on the scheduling fakes: what it puts
back, and the ids it refuses before writing anything."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from application.errors import LibraryItemNotFound
from application.ports.scheduling import ItemTrackLink
from application.use_cases.resync import Resync, ResyncCommand, ResyncOutcome
from domain.errors import InvalidLibraryItemId
from domain.library import LibraryItem, LibraryItemKind
from domain.values import CatalogId, LibraryItemId, UserId
from tests.unit.fakes import FakeClock, SchedulingStore, scheduling_uow_factory

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def stored(store: SchedulingStore, kind: LibraryItemKind, status: str) -> LibraryItem:
    number = len(store.items) + 1
    item = LibraryItem(
        id=LibraryItemId(uuid.uuid4()),
        user_id=UserId("alice"),
        kind=kind,
        catalog_id=CatalogId(
            str(uuid.UUID(int=number)) if kind is LibraryItemKind.PLAYLIST else str(number)
        ),
        added_at=T0,
    )
    store.add_pending(item)
    store.jobs[item.id].status = status
    store.link_writes.append([ItemTrackLink(item.id, 0, CatalogId("99"), None)])
    return item


@pytest.fixture
def store() -> SchedulingStore:
    return SchedulingStore()


def resync(store: SchedulingStore) -> Resync:
    return Resync(scheduling_uow_factory(store), FakeClock())


async def test_with_no_ids_every_ended_playlist_is_read_again_and_nothing_else(
    store: SchedulingStore,
) -> None:
    done = stored(store, LibraryItemKind.PLAYLIST, "done")
    failed = stored(store, LibraryItemKind.PLAYLIST, "failed")
    pending = stored(store, LibraryItemKind.PLAYLIST, "pending")
    album = stored(store, LibraryItemKind.ALBUM, "done")

    outcome = await resync(store)(ResyncCommand())

    assert outcome == ResyncOutcome(resynced=2, still_pending=0)
    assert {i: store.jobs[i.id].status for i in (done, failed, pending, album)} == {
        done: "pending",
        failed: "pending",
        pending: "pending",
        album: "done",
    }
    assert [link.item_id for link in store.links] == [pending.id, album.id]


async def test_named_playlists_are_read_again_and_a_pending_one_is_counted_apart(
    store: SchedulingStore,
) -> None:
    named = stored(store, LibraryItemKind.PLAYLIST, "done")
    pending = stored(store, LibraryItemKind.PLAYLIST, "pending")
    other = stored(store, LibraryItemKind.PLAYLIST, "done")

    outcome = await resync(store)(ResyncCommand((str(named.id), str(pending.id))))

    assert outcome == ResyncOutcome(resynced=1, still_pending=1)
    assert store.jobs[other.id].status == "done"


async def test_an_id_that_is_no_playlist_is_refused_and_nothing_changes(
    store: SchedulingStore,
) -> None:
    playlist = stored(store, LibraryItemKind.PLAYLIST, "done")
    album = stored(store, LibraryItemKind.ALBUM, "done")
    commits = store.commits

    for unknown in (str(album.id), str(uuid.uuid4())):
        with pytest.raises(LibraryItemNotFound):
            await resync(store)(ResyncCommand((str(playlist.id), unknown)))
    with pytest.raises(InvalidLibraryItemId):
        await resync(store)(ResyncCommand(("not-an-id",)))

    assert store.jobs[playlist.id].status == "done"
    assert store.commits == commits
