"""The PostgreSQL unit of work, library repository and the add's one-statement write against a
real server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.database import create_pool, driver_url
from adapters.postgres.library_additions import PostgresLibraryAdditions
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


async def _stored(pool: asyncpg.Pool, *items: LibraryItem) -> None:
    additions = PostgresLibraryAdditions(pool)
    for item in items:
        _, created = await additions.add(item)
        assert created


async def test_nothing_is_kept_unless_the_unit_of_work_commits(
    engine: AsyncEngine, session_pool: asyncpg.Pool
) -> None:
    item = _item("alice", "1", T0)
    await _stored(session_pool, item)
    uow_factory = PostgresUnitOfWorkFactory(engine)
    async with uow_factory() as uow:
        assert await uow.library.remove(UserId("alice"), item.id)

    assert await _count(engine, "library_items") == 1
    assert await _count(engine, "scheduling_jobs") == 1


async def test_an_exception_inside_the_unit_of_work_rolls_everything_back(
    engine: AsyncEngine, session_pool: asyncpg.Pool
) -> None:
    item = _item("alice", "1", T0)
    await _stored(session_pool, item)
    uow_factory = PostgresUnitOfWorkFactory(engine)
    with pytest.raises(RuntimeError, match="boom"):
        async with uow_factory() as uow:
            await uow.library.remove(UserId("alice"), item.id)
            raise RuntimeError("boom")

    assert await _count(engine, "library_items") == 1


async def test_an_added_item_and_its_job_are_committed_together(
    engine: AsyncEngine, session_pool: asyncpg.Pool
) -> None:
    item = _item("alice", "3", T0)
    stored, created = await PostgresLibraryAdditions(session_pool).add(item)

    assert created and stored == item
    async with engine.connect() as connection:
        job = (await connection.execute(text("SELECT * FROM scheduling_jobs"))).mappings().one()
    assert job["library_item_id"] == item.id
    assert job["status"] == "pending" and job["attempts"] == 0
    assert job["created_at"] == job["run_after"] == T0


@pytest.fixture
async def job_inserts_fail(engine: AsyncEngine) -> AsyncIterator[None]:
    """Makes the server refuse every scheduling job, after the item's insert has run."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "CREATE FUNCTION refuse_job() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN RAISE EXCEPTION 'job refused by the test'; END $$"
            )
        )
        await connection.execute(
            text(
                "CREATE TRIGGER refuse_job BEFORE INSERT ON scheduling_jobs"
                " FOR EACH ROW EXECUTE FUNCTION refuse_job()"
            )
        )
    try:
        yield
    finally:
        async with engine.begin() as connection:
            await connection.execute(text("DROP TRIGGER refuse_job ON scheduling_jobs"))
            await connection.execute(text("DROP FUNCTION refuse_job()"))


async def test_an_add_whose_job_fails_leaves_neither_item_nor_job_nor_notification(
    engine: AsyncEngine, session_pool: asyncpg.Pool, database_url: str, job_inserts_fail: None
) -> None:
    listener = await asyncpg.connect(driver_url(database_url))
    heard: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(SCHEDULING_CHANNEL, lambda *args: heard.put_nowait(args[3]))
    try:
        with pytest.raises(asyncpg.exceptions.RaiseError, match="job refused"):
            await PostgresLibraryAdditions(session_pool).add(_item("alice", "5", T0))
        async with session_pool.acquire() as connection:
            await connection.execute(f"NOTIFY {SCHEDULING_CHANNEL}, 'marker'")
        assert await asyncio.wait_for(heard.get(), timeout=5) == "marker"
    finally:
        await listener.close()

    assert await _count(engine, "library_items") == 0
    assert await _count(engine, "scheduling_jobs") == 0


async def test_committed_items_round_trip_with_their_owner_scope(
    engine: AsyncEngine, session_pool: asyncpg.Pool
) -> None:
    uow_factory = PostgresUnitOfWorkFactory(engine)
    original = _item("alice", "42", T0, LibraryItemKind.TRACK)
    await _stored(session_pool, original)

    async with uow_factory() as uow:
        assert await uow.library.get(UserId("alice"), original.id) == original
        assert await uow.library.get(UserId("bob"), original.id) is None
        assert await uow.library.remove(UserId("bob"), original.id) is False


async def test_the_unique_key_keeps_one_item_per_user_kind_and_catalogue_id(
    engine: AsyncEngine, session_pool: asyncpg.Pool
) -> None:
    first = _item("alice", "7", T0)
    await _stored(session_pool, first)

    stored, created = await PostgresLibraryAdditions(session_pool).add(
        _item("alice", "7", T0 + timedelta(1))
    )

    assert not created
    assert stored == first
    assert await _count(engine, "library_items") == 1
    assert await _count(engine, "scheduling_jobs") == 1


async def test_fifty_concurrent_identical_adds_make_one_item_and_one_job(
    engine: AsyncEngine, session_pool: asyncpg.Pool
) -> None:
    add = AddAlbumToLibrary(PostgresLibraryAdditions(session_pool), FakeClock())
    results = await asyncio.gather(
        *(add(AddAlbumToLibraryCommand("alice", "396698918")) for _ in range(50))
    )

    assert sum(not result.already_in_library for result in results) == 1
    assert len({result.item.id for result in results}) == 1
    assert await _count(engine, "library_items") == 1
    assert await _count(engine, "scheduling_jobs") == 1


async def test_removing_an_item_takes_its_pending_job_with_it(
    engine: AsyncEngine, session_pool: asyncpg.Pool
) -> None:
    uow_factory = PostgresUnitOfWorkFactory(engine)
    item = _item("alice", "8", T0)
    await _stored(session_pool, item)

    async with uow_factory() as uow:
        assert await uow.library.remove(UserId("alice"), item.id)
        await uow.commit()

    assert await _count(engine, "scheduling_jobs") == 0


async def test_pagination_cursors_stay_stable_when_newer_items_arrive(
    engine: AsyncEngine, session_pool: asyncpg.Pool
) -> None:
    uow_factory = PostgresUnitOfWorkFactory(engine)
    # Two items share one timestamp, so the id must break the tie.
    times = [T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)]
    items = [_item("alice", str(n), at) for n, at in enumerate(times)]
    await _stored(session_pool, *items, _item("bob", "1", T0))

    async with uow_factory() as uow:
        first_page = await uow.library.page(UserId("alice"), kind=None, after=None, limit=2)
    last = first_page.items[-1]

    # Newer items arrive between the two pages.
    await _stored(session_pool, _item("alice", "100", T0 + timedelta(hours=1)))

    async with uow_factory() as uow:
        second_page = await uow.library.page(
            UserId("alice"), kind=None, after=LibraryPosition(last.added_at, last.id), limit=10
        )

    expected = sorted(items, key=lambda i: (i.added_at, i.id), reverse=True)
    assert [i.id for i in first_page.items + second_page.items] == [i.id for i in expected]
    assert first_page.has_more and not second_page.has_more
    assert first_page.total_count == 4 and second_page.total_count == 5


async def test_an_add_notifies_listeners_once_and_a_re_add_not_at_all(
    engine: AsyncEngine, session_pool: asyncpg.Pool, database_url: str
) -> None:
    listener = await asyncpg.connect(driver_url(database_url))
    heard: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(SCHEDULING_CHANNEL, lambda *args: heard.put_nowait(args[3]))
    try:
        additions = PostgresLibraryAdditions(session_pool)
        added = _item("alice", "2", T0)
        await additions.add(added)
        await additions.add(_item("alice", "2", T0))  # a re-add

        payload = await asyncio.wait_for(heard.get(), timeout=5)
        assert payload == str(added.id)
        # A marker sent after the adds arrives next: nothing else was notified in between.
        async with session_pool.acquire() as connection:
            await connection.execute(f"NOTIFY {SCHEDULING_CHANNEL}, 'marker'")
        assert await asyncio.wait_for(heard.get(), timeout=5) == "marker"
    finally:
        await listener.close()


async def test_an_unreachable_database_raises_storage_unavailable_not_a_driver_error() -> None:
    from adapters.postgres.database import create_engine
    from application.ports.unit_of_work import StorageUnavailable

    nowhere = create_engine("postgresql://postgres@127.0.0.1:1/none", pool_size=1)
    nowhere_pool = await create_pool("postgresql://postgres@127.0.0.1:1/none", size=1)
    try:
        with pytest.raises(StorageUnavailable):
            await PostgresLibraryAdditions(nowhere_pool).add(_item("alice", "1", T0))
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
        await nowhere_pool.close()


async def test_a_connection_lost_inside_the_unit_of_work_raises_storage_unavailable(
    engine: AsyncEngine, session_pool: asyncpg.Pool
) -> None:
    from application.ports.unit_of_work import StorageUnavailable

    item = _item("alice", "1", T0)
    await _stored(session_pool, item)
    with pytest.raises(StorageUnavailable):
        async with PostgresUnitOfWorkFactory(engine)() as uow:
            await uow.library.remove(UserId("alice"), item.id)
            # The server ends this very backend, as a restart or a failover would.
            await uow.library._connection.execute(
                text("SELECT pg_terminate_backend(pg_backend_pid())")
            )

    assert await _count(engine, "library_items") == 1


async def test_an_add_on_a_connection_the_server_ended_is_storage_unavailable_or_reconnects(
    engine: AsyncEngine, database_url: str
) -> None:
    from application.ports.unit_of_work import StorageUnavailable

    pool = await create_pool(database_url, size=1)
    try:
        async with pool.acquire() as connection:
            backend = await connection.fetchval("SELECT pg_backend_pid()")
        async with engine.connect() as other:
            await other.execute(text(f"SELECT pg_terminate_backend({backend})"))
        additions = PostgresLibraryAdditions(pool)

        # Whether the pool notices the ended connection before the add depends on when the
        # server's goodbye is read: the add then either reconnects or answers
        # StorageUnavailable. No driver error may escape, and the next add must succeed.
        outcomes = []
        for _ in range(2):
            try:
                _, created = await additions.add(_item("alice", "1", T0))
            except StorageUnavailable:
                outcomes.append("unavailable")
            else:
                outcomes.append("created" if created else "already there")
        assert outcomes in (["unavailable", "created"], ["created", "already there"])
        assert await _count(engine, "library_items") == 1
    finally:
        await pool.close()
