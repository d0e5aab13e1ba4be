"""The PostgreSQL unit of work and library repository against a real server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.tables import SCHEDULING_CHANNEL
from adapters.postgres.unit_of_work import PostgresUnitOfWorkFactory
from application.ports.unit_of_work import LibraryPosition
from application.use_cases.add_album_to_library import AddAlbumToLibrary, AddAlbumToLibraryCommand
from domain.library import LibraryItem, LibraryItemKind
from domain.values import CatalogId, UserId
from tests.unit.fakes import FakeClock

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _item(user: str, catalog_id: str, at: datetime, kind: LibraryItemKind = LibraryItemKind.ALBUM):
    return LibraryItem.new(user_id=UserId(user), kind=kind, catalog_id=CatalogId(catalog_id), at=at)


async def _count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def test_nothing_is_kept_unless_the_unit_of_work_commits(engine: AsyncEngine) -> None:
    uow_factory = PostgresUnitOfWorkFactory(engine)
    async with uow_factory() as uow:
        item, created = await uow.library.add_if_absent(_item("alice", "1", T0))
        await uow.outbox.enqueue(item.id, at=T0)
        assert created

    assert await _count(engine, "library_items") == 0
    assert await _count(engine, "scheduling_jobs") == 0


async def test_an_exception_inside_the_unit_of_work_rolls_everything_back(
    engine: AsyncEngine,
) -> None:
    uow_factory = PostgresUnitOfWorkFactory(engine)
    try:
        async with uow_factory() as uow:
            item, _ = await uow.library.add_if_absent(_item("alice", "1", T0))
            await uow.outbox.enqueue(item.id, at=T0)
            raise RuntimeError("boom")
    except RuntimeError:
        pass

    assert await _count(engine, "library_items") == 0


async def test_committed_items_round_trip_with_their_owner_scope(engine: AsyncEngine) -> None:
    uow_factory = PostgresUnitOfWorkFactory(engine)
    original = _item("alice", "42", T0, LibraryItemKind.TRACK)
    async with uow_factory() as uow:
        await uow.library.add_if_absent(original)
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.library.get(UserId("alice"), original.id) == original
        assert await uow.library.get(UserId("bob"), original.id) is None
        assert await uow.library.remove(UserId("bob"), original.id) is False
        assert (
            await uow.library.find(UserId("alice"), LibraryItemKind.TRACK, CatalogId("42"))
            == original
        )


async def test_the_unique_key_keeps_one_item_per_user_kind_and_catalogue_id(
    engine: AsyncEngine,
) -> None:
    uow_factory = PostgresUnitOfWorkFactory(engine)
    first = _item("alice", "7", T0)
    async with uow_factory() as uow:
        await uow.library.add_if_absent(first)
        await uow.commit()

    async with uow_factory() as uow:
        stored, created = await uow.library.add_if_absent(_item("alice", "7", T0 + timedelta(1)))
        await uow.commit()

    assert not created
    assert stored == first
    assert await _count(engine, "library_items") == 1


async def test_fifty_concurrent_identical_adds_make_one_item_and_one_job(
    engine: AsyncEngine,
) -> None:
    add = AddAlbumToLibrary(PostgresUnitOfWorkFactory(engine), FakeClock())
    results = await asyncio.gather(
        *(add(AddAlbumToLibraryCommand("alice", "396698918")) for _ in range(50))
    )

    assert sum(not result.already_in_library for result in results) == 1
    assert len({result.item.id for result in results}) == 1
    assert await _count(engine, "library_items") == 1
    assert await _count(engine, "scheduling_jobs") == 1


async def test_removing_an_item_takes_its_pending_job_with_it(engine: AsyncEngine) -> None:
    uow_factory = PostgresUnitOfWorkFactory(engine)
    item = _item("alice", "8", T0)
    async with uow_factory() as uow:
        await uow.library.add_if_absent(item)
        await uow.outbox.enqueue(item.id, at=T0)
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.library.remove(UserId("alice"), item.id)
        await uow.commit()

    assert await _count(engine, "scheduling_jobs") == 0


async def test_pagination_cursors_stay_stable_when_newer_items_arrive(
    engine: AsyncEngine,
) -> None:
    uow_factory = PostgresUnitOfWorkFactory(engine)
    # Two items share one timestamp, so the id must break the tie.
    times = [T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)]
    items = [_item("alice", str(n), at) for n, at in enumerate(times)]
    async with uow_factory() as uow:
        for item in items:
            await uow.library.add_if_absent(item)
        await uow.library.add_if_absent(_item("bob", "1", T0))
        await uow.commit()

    async with uow_factory() as uow:
        first_page = await uow.library.page(UserId("alice"), kind=None, after=None, limit=2)
    last = first_page.items[-1]

    async with uow_factory() as uow:  # newer items arrive between the two pages
        await uow.library.add_if_absent(_item("alice", "100", T0 + timedelta(hours=1)))
        await uow.commit()

    async with uow_factory() as uow:
        second_page = await uow.library.page(
            UserId("alice"), kind=None, after=LibraryPosition(last.added_at, last.id), limit=10
        )

    expected = sorted(items, key=lambda i: (i.added_at, i.id), reverse=True)
    assert [i.id for i in first_page.items + second_page.items] == [i.id for i in expected]
    assert first_page.has_more and not second_page.has_more
    assert first_page.total_count == 4 and second_page.total_count == 5


async def test_the_outbox_notifies_listeners_only_when_the_add_commits(
    engine: AsyncEngine, database_url: str
) -> None:
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    listener = await asyncpg.connect(dsn)
    heard: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(SCHEDULING_CHANNEL, lambda *args: heard.put_nowait(args[3]))
    try:
        uow_factory = PostgresUnitOfWorkFactory(engine)
        rolled_back = _item("alice", "1", T0)
        async with uow_factory() as uow:
            await uow.library.add_if_absent(rolled_back)
            await uow.outbox.enqueue(rolled_back.id, at=T0)
        committed = _item("alice", "2", T0)
        async with uow_factory() as uow:
            await uow.library.add_if_absent(committed)
            await uow.outbox.enqueue(committed.id, at=T0)
            await uow.commit()

        payload = await asyncio.wait_for(heard.get(), timeout=5)
        assert payload == str(committed.id)
        assert heard.empty()
    finally:
        await listener.close()


async def test_an_unreachable_database_raises_storage_unavailable_not_a_driver_error() -> None:
    from adapters.postgres.database import create_engine
    from application.ports.unit_of_work import StorageUnavailable

    nowhere = create_engine("postgresql://postgres@127.0.0.1:1/none", pool_size=1)
    try:
        with pytest.raises(StorageUnavailable):
            async with PostgresUnitOfWorkFactory(nowhere)() as uow:
                await uow.library.get(
                    UserId("alice"),
                    LibraryItem.new(
                        user_id=UserId("alice"),
                        kind=LibraryItemKind.TRACK,
                        catalog_id=CatalogId("1"),
                        at=T0,
                    ).id,
                )
    finally:
        await nowhere.dispose()


async def test_a_connection_lost_inside_the_unit_of_work_raises_storage_unavailable(
    engine: AsyncEngine,
) -> None:
    from application.ports.unit_of_work import StorageUnavailable

    with pytest.raises(StorageUnavailable):
        async with PostgresUnitOfWorkFactory(engine)() as uow:
            await uow.library.add_if_absent(_item("alice", "1", T0))
            # The server ends this very backend, as a restart or a failover would.
            await uow.library._connection.execute(
                text("SELECT pg_terminate_backend(pg_backend_pid())")
            )

    assert await _count(engine, "library_items") == 0
