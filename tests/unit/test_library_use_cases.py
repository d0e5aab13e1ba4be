"""The library use cases against plain in-memory fakes, asserting on outcomes."""

from __future__ import annotations

import pytest

from application.errors import InvalidCursor, InvalidPageSize, LibraryItemNotFound
from application.use_cases.add_album_to_library import AddAlbumToLibrary, AddAlbumToLibraryCommand
from application.use_cases.add_playlist_to_library import (
    AddPlaylistToLibrary,
    AddPlaylistToLibraryCommand,
)
from application.use_cases.add_track_to_library import AddTrackToLibrary, AddTrackToLibraryCommand
from application.use_cases.get_library_item import GetLibraryItem, GetLibraryItemCommand
from application.use_cases.list_library import ListLibrary, ListLibraryCommand
from application.use_cases.remove_from_library import RemoveFromLibrary, RemoveFromLibraryCommand
from domain.errors import InvalidCatalogId
from domain.library import LibraryItemKind
from tests.unit.fakes import FakeClock, FakeLibraryAdditions, FakeStore, FakeUnitOfWorkFactory


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def uow(store: FakeStore) -> FakeUnitOfWorkFactory:
    return FakeUnitOfWorkFactory(store)


async def test_adding_an_album_stores_the_item_and_its_scheduling_job_together(
    store: FakeStore, uow: FakeUnitOfWorkFactory
) -> None:
    added = await AddAlbumToLibrary(FakeLibraryAdditions(uow.store), FakeClock())(
        AddAlbumToLibraryCommand("alice", "123")
    )

    assert not added.already_in_library
    assert added.item.kind is LibraryItemKind.ALBUM
    assert added.item.catalog_id.value == "123"
    assert list(store.items) == [added.item.id]
    assert list(store.jobs) == [added.item.id]
    assert store.commits == 1


async def test_re_adding_an_item_answers_the_same_item_and_changes_nothing(
    store: FakeStore, uow: FakeUnitOfWorkFactory
) -> None:
    add = AddTrackToLibrary(FakeLibraryAdditions(uow.store), FakeClock())
    first = await add(AddTrackToLibraryCommand("alice", "77"))
    jobs_before = dict(store.jobs)

    second = await add(AddTrackToLibraryCommand("alice", "77"))

    assert second.already_in_library
    assert second.item == first.item
    assert store.jobs == jobs_before
    assert len(store.items) == 1


async def test_the_same_catalogue_id_as_track_and_as_album_are_two_items(
    store: FakeStore, uow: FakeUnitOfWorkFactory
) -> None:
    clock = FakeClock()
    await AddTrackToLibrary(FakeLibraryAdditions(uow.store), clock)(
        AddTrackToLibraryCommand("alice", "5")
    )
    await AddAlbumToLibrary(FakeLibraryAdditions(uow.store), clock)(
        AddAlbumToLibraryCommand("alice", "5")
    )

    assert sorted(item.kind for item in store.items.values()) == ["album", "track"]


async def test_adding_a_playlist_stores_it_under_its_uuid_in_lower_case_with_its_job(
    store: FakeStore, uow: FakeUnitOfWorkFactory
) -> None:
    add = AddPlaylistToLibrary(FakeLibraryAdditions(uow.store), FakeClock())

    added = await add(
        AddPlaylistToLibraryCommand("alice", " 5A3B1E00-0000-4000-8000-000000000001 ")
    )
    again = await add(AddPlaylistToLibraryCommand("alice", "5a3b1e00-0000-4000-8000-000000000001"))

    assert added.item.kind is LibraryItemKind.PLAYLIST
    assert added.item.catalog_id.value == "5a3b1e00-0000-4000-8000-000000000001"
    assert (added.already_in_library, again.already_in_library) == (False, True)
    assert again.item == added.item
    assert list(store.jobs) == [added.item.id]


@pytest.mark.parametrize(
    "bad_id",
    ["396698918", "", "5a3b1e00000040008000000000000001", "{5a3b1e00-0000-4000-8000-000000000001}"],
)
async def test_a_playlist_id_that_is_not_a_uuid_is_refused_and_nothing_is_written(
    bad_id: str, store: FakeStore, uow: FakeUnitOfWorkFactory
) -> None:
    with pytest.raises(InvalidCatalogId) as refused:
        await AddPlaylistToLibrary(FakeLibraryAdditions(uow.store), FakeClock())(
            AddPlaylistToLibraryCommand("alice", bad_id)
        )

    assert refused.value.raw == bad_id
    assert (store.items, store.jobs, store.commits) == ({}, {}, 0)


@pytest.mark.parametrize("bad_id", ["abc", "", " ", "-1", "1" * 21, "١٢٣", "12 34", "x" * 10_000])
async def test_a_malformed_catalogue_id_is_refused_and_nothing_is_written(
    bad_id: str, store: FakeStore, uow: FakeUnitOfWorkFactory
) -> None:
    with pytest.raises(InvalidCatalogId):
        await AddAlbumToLibrary(FakeLibraryAdditions(uow.store), FakeClock())(
            AddAlbumToLibraryCommand("alice", bad_id)
        )

    assert store.items == {}
    assert store.jobs == {}


async def test_removing_an_item_deletes_it_and_another_user_cannot(
    store: FakeStore, uow: FakeUnitOfWorkFactory
) -> None:
    added = await AddTrackToLibrary(FakeLibraryAdditions(uow.store), FakeClock())(
        AddTrackToLibraryCommand("alice", "9")
    )
    remove = RemoveFromLibrary(uow)

    with pytest.raises(LibraryItemNotFound):
        await remove(RemoveFromLibraryCommand("mallory", str(added.item.id)))
    assert added.item.id in store.items

    removed = await remove(RemoveFromLibraryCommand("alice", str(added.item.id)))
    assert removed == added.item.id
    assert store.items == {}


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "", "0" * 1000])
async def test_a_malformed_item_id_is_simply_not_found(
    bad_id: str, uow: FakeUnitOfWorkFactory
) -> None:
    with pytest.raises(LibraryItemNotFound):
        await GetLibraryItem(uow)(GetLibraryItemCommand("alice", bad_id))
    with pytest.raises(LibraryItemNotFound):
        await RemoveFromLibrary(uow)(RemoveFromLibraryCommand("alice", bad_id))


async def test_another_users_item_reads_exactly_like_an_unknown_one(
    uow: FakeUnitOfWorkFactory,
) -> None:
    added = await AddTrackToLibrary(FakeLibraryAdditions(uow.store), FakeClock())(
        AddTrackToLibraryCommand("alice", "9")
    )
    get = GetLibraryItem(uow)

    with pytest.raises(LibraryItemNotFound) as foreign:
        await get(GetLibraryItemCommand("mallory", str(added.item.id)))
    with pytest.raises(LibraryItemNotFound) as unknown:
        await get(GetLibraryItemCommand("mallory", "00000000-0000-0000-0000-000000000000"))

    assert type(foreign.value) is type(unknown.value)
    assert (await get(GetLibraryItemCommand("alice", str(added.item.id)))) == added.item


async def test_listing_pages_newest_first_and_filters_by_kind(
    uow: FakeUnitOfWorkFactory,
) -> None:
    clock = FakeClock()
    for number in range(5):
        await AddTrackToLibrary(FakeLibraryAdditions(uow.store), clock)(
            AddTrackToLibraryCommand("alice", str(number))
        )
        await AddAlbumToLibrary(FakeLibraryAdditions(uow.store), clock)(
            AddAlbumToLibraryCommand("alice", str(number))
        )
    await AddTrackToLibrary(FakeLibraryAdditions(uow.store), clock)(
        AddTrackToLibraryCommand("bob", "1")
    )
    list_library = ListLibrary(uow)

    seen: list[str] = []
    after = None
    while True:
        page = await list_library(
            ListLibraryCommand("alice", first=2, after=after, kind=LibraryItemKind.TRACK)
        )
        seen.extend(item.catalog_id.value for item in page.items)
        assert page.total_count == 5
        if not page.has_next_page:
            break
        after = page.end_cursor

    assert seen == ["4", "3", "2", "1", "0"]


@pytest.mark.parametrize("first", [-1, 101])
async def test_a_page_size_out_of_range_is_refused(first: int, uow: FakeUnitOfWorkFactory) -> None:
    with pytest.raises(InvalidPageSize):
        await ListLibrary(uow)(ListLibraryCommand("alice", first=first))


@pytest.mark.parametrize("cursor", ["", "garbage", "bGkxOg", "x" * 300, "🎵"])
async def test_a_cursor_this_service_did_not_issue_is_refused(
    cursor: str, uow: FakeUnitOfWorkFactory
) -> None:
    with pytest.raises(InvalidCursor):
        await ListLibrary(uow)(ListLibraryCommand("alice", after=cursor))
