"""The library's contract: LibraryAdditions (the add's one atomic write) and the UnitOfWork with
its LibraryRepository and ProgressReader. Every read and write is scoped to one owner; nothing
is kept unless the unit of work commits; losing the database raises StorageUnavailable."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from application.errors import TooManyPendingAdds
from application.ports.library_additions import LibraryAdditions
from application.ports.unit_of_work import LibraryPosition, StorageUnavailable, UnitOfWorkFactory
from domain.library import IngestionProgress, LibraryItem, LibraryItemKind
from domain.values import CatalogId, LibraryItemId, UserId

T0 = datetime(2026, 3, 1, tzinfo=UTC)
ALICE, BOB = UserId("alice"), UserId("bob")


def item(
    user: UserId = ALICE,
    catalog_id: str = "1",
    at: datetime = T0,
    kind: LibraryItemKind = LibraryItemKind.ALBUM,
) -> LibraryItem:
    return LibraryItem.new(user_id=user, kind=kind, catalog_id=CatalogId(catalog_id), at=at)


@dataclass
class LibraryRig:
    """The adapters under test, over one store: the add's write and the units of work."""

    additions: LibraryAdditions
    uow: UnitOfWorkFactory

    async def stored(self, *items: LibraryItem) -> None:
        for each in items:
            _, created = await self.additions.add(each)
            assert created

    async def get(self, user: UserId, item_id: LibraryItemId) -> LibraryItem | None:
        async with self.uow() as uow:
            return await uow.library.get(user, item_id)


class LibraryContract:
    """Subclass as `Test<Adapter>LibraryContract` with two fixtures: `library`, a LibraryRig over
    an empty store; and `unavailable_library`, one whose store cannot be reached."""

    # -- the add -------------------------------------------------------------------------------

    async def test_an_add_stores_the_item_and_answers_it_as_created(
        self, library: LibraryRig
    ) -> None:
        added = item()

        stored, created = await library.additions.add(added)

        assert (stored, created) == (added, True)
        assert await library.get(ALICE, added.id) == added

    async def test_a_re_add_answers_the_stored_item_unchanged_and_not_created(
        self, library: LibraryRig
    ) -> None:
        first = item(at=T0)
        await library.stored(first)

        stored, created = await library.additions.add(item(at=T0 + timedelta(days=1)))

        assert (stored, created) == (first, False)

    async def test_the_same_catalogue_id_is_a_separate_item_per_kind_and_per_owner(
        self, library: LibraryRig
    ) -> None:
        album = item(kind=LibraryItemKind.ALBUM)
        track = item(kind=LibraryItemKind.TRACK)
        bobs = item(user=BOB)

        results = [await library.additions.add(each) for each in (album, track, bobs)]

        assert results == [(album, True), (track, True), (bobs, True)]

    async def test_concurrent_identical_adds_create_exactly_one_item(
        self, library: LibraryRig
    ) -> None:
        results = await asyncio.gather(*(library.additions.add(item()) for _ in range(20)))

        assert sum(created for _, created in results) == 1
        assert len({stored.id for stored, _ in results}) == 1

    async def test_a_new_item_past_the_pending_cap_is_refused_and_not_stored(
        self, library: LibraryRig
    ) -> None:
        first, refused = item(catalog_id="1"), item(catalog_id="2")
        await library.additions.add(first, max_pending=1)

        with pytest.raises(TooManyPendingAdds):
            await library.additions.add(refused, max_pending=1)

        assert await library.get(ALICE, refused.id) is None
        # The cap is per owner, and a re-add at the cap answers the stored item.
        assert (await library.additions.add(item(user=BOB), max_pending=1))[1]
        assert await library.additions.add(item(catalog_id="1"), max_pending=1) == (first, False)

    # -- owner scope ---------------------------------------------------------------------------

    async def test_another_users_item_is_invisible_and_cannot_be_removed(
        self, library: LibraryRig
    ) -> None:
        alices = item()
        await library.stored(alices)

        async with library.uow() as uow:
            assert await uow.library.get(BOB, alices.id) is None
            assert await uow.library.remove(BOB, alices.id) is False
            assert (await uow.library.page(BOB, kind=None, after=None, limit=10)).items == ()
            await uow.commit()

        assert await library.get(ALICE, alices.id) == alices

    async def test_an_unknown_item_is_none_and_removing_it_is_false(
        self, library: LibraryRig
    ) -> None:
        unknown = LibraryItemId(uuid.uuid4())

        async with library.uow() as uow:
            assert await uow.library.get(ALICE, unknown) is None
            assert await uow.library.remove(ALICE, unknown) is False

    # -- the unit of work ----------------------------------------------------------------------

    async def test_a_committed_removal_deletes_the_item(self, library: LibraryRig) -> None:
        added = item()
        await library.stored(added)

        async with library.uow() as uow:
            assert await uow.library.remove(ALICE, added.id) is True
            await uow.commit()

        assert await library.get(ALICE, added.id) is None

    async def test_nothing_is_kept_unless_the_unit_of_work_commits(
        self, library: LibraryRig
    ) -> None:
        added = item()
        await library.stored(added)

        async with library.uow() as uow:
            assert await uow.library.remove(ALICE, added.id) is True

        assert await library.get(ALICE, added.id) == added

    async def test_an_exception_inside_the_unit_of_work_rolls_everything_back(
        self, library: LibraryRig
    ) -> None:
        added = item()
        await library.stored(added)

        with pytest.raises(RuntimeError, match="boom"):
            async with library.uow() as uow:
                await uow.library.remove(ALICE, added.id)
                raise RuntimeError("boom")

        assert await library.get(ALICE, added.id) == added

    # -- pages ---------------------------------------------------------------------------------

    async def test_a_page_is_newest_first_with_ties_broken_by_id_and_counts_every_item(
        self, library: LibraryRig
    ) -> None:
        # Two items share one timestamp, so the id must break the tie.
        times = [T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=1), T0 + timedelta(2)]
        items = [item(catalog_id=str(n), at=at) for n, at in enumerate(times)]
        await library.stored(*items, item(user=BOB))

        async with library.uow() as uow:
            page = await uow.library.page(ALICE, kind=None, after=None, limit=3)

        newest_first = sorted(items, key=lambda i: (i.added_at, i.id), reverse=True)
        assert list(page.items) == newest_first[:3]
        assert (page.has_more, page.total_count) == (True, 4)

    async def test_a_cursor_stays_stable_when_newer_items_arrive(self, library: LibraryRig) -> None:
        items = [item(catalog_id=str(n), at=T0 + timedelta(seconds=n)) for n in range(4)]
        await library.stored(*items)
        async with library.uow() as uow:
            first = await uow.library.page(ALICE, kind=None, after=None, limit=2)
        last = first.items[-1]

        await library.stored(item(catalog_id="100", at=T0 + timedelta(hours=1)))
        async with library.uow() as uow:
            after = LibraryPosition(last.added_at, last.id)
            second = await uow.library.page(ALICE, kind=None, after=after, limit=10)

        assert list(first.items + second.items) == items[::-1]
        assert (first.has_more, second.has_more) == (True, False)
        assert second.total_count == 5

    async def test_a_page_of_one_kind_holds_only_that_kind(self, library: LibraryRig) -> None:
        album = item(catalog_id="1", kind=LibraryItemKind.ALBUM)
        track = item(catalog_id="2", kind=LibraryItemKind.TRACK, at=T0 + timedelta(1))
        await library.stored(album, track)

        async with library.uow() as uow:
            tracks = await uow.library.page(ALICE, kind=LibraryItemKind.TRACK, after=None, limit=9)

        assert (tracks.items, tracks.has_more, tracks.total_count) == ((track,), False, 1)

    # -- progress ------------------------------------------------------------------------------

    async def test_progress_has_one_entry_per_id_and_an_unknown_id_is_pending(
        self, library: LibraryRig
    ) -> None:
        added = item()
        await library.stored(added)
        unknown = LibraryItemId(uuid.uuid4())

        async with library.uow() as uow:
            progress = await uow.progress.for_items([added.id, unknown])

        assert set(progress) == {added.id, unknown}
        assert progress[unknown] == IngestionProgress()
        assert progress[added.id].scheduling == IngestionProgress().scheduling

    # -- outages -------------------------------------------------------------------------------

    async def test_an_add_to_an_unreachable_store_raises_storage_unavailable(
        self, unavailable_library: LibraryRig
    ) -> None:
        with pytest.raises(StorageUnavailable):
            await unavailable_library.additions.add(item())

    async def test_a_unit_of_work_on_an_unreachable_store_raises_storage_unavailable(
        self, unavailable_library: LibraryRig
    ) -> None:
        with pytest.raises(StorageUnavailable):
            async with unavailable_library.uow() as uow:
                await uow.library.get(ALICE, LibraryItemId(uuid.uuid4()))
