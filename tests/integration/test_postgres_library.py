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

from adapters.postgres.database import create_engine, create_pool, driver_url
from adapters.postgres.library_additions import PostgresLibraryAdditions
from adapters.postgres.tables import SCHEDULING_CHANNEL
from adapters.postgres.unit_of_work import PostgresUnitOfWorkFactory
from application.use_cases.add_album_to_library import AddAlbumToLibrary, AddAlbumToLibraryCommand
from domain.library import LibraryItem, LibraryItemKind
from domain.values import CatalogId, UserId
from tests.contracts.library import LibraryContract, LibraryRig
from tests.unit.fakes import FakeClock

T0 = datetime(2026, 3, 1, tzinfo=UTC)
NOWHERE = "postgresql://postgres@127.0.0.1:1/none"  # nothing listens on port 1


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


class TestPostgresLibraryContract(LibraryContract):
    @pytest.fixture
    def library(self, engine: AsyncEngine, session_pool: asyncpg.Pool) -> LibraryRig:
        return LibraryRig(PostgresLibraryAdditions(session_pool), PostgresUnitOfWorkFactory(engine))

    @pytest.fixture
    async def unavailable_library(self) -> AsyncIterator[LibraryRig]:
        nowhere = create_engine(NOWHERE, pool_size=1)
        nowhere_pool = await create_pool(NOWHERE, size=1)
        yield LibraryRig(PostgresLibraryAdditions(nowhere_pool), PostgresUnitOfWorkFactory(nowhere))
        await nowhere.dispose()
        await nowhere_pool.close()


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


async def test_a_new_item_takes_its_title_and_artists_from_the_catalogue_cache(
    engine: AsyncEngine, session_pool: asyncpg.Pool
) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO catalog_albums (album_id, title, artist_names, fetched_at)"
                " VALUES ('77', 'Cached Album', '{Ann,Bo}', now())"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO catalog_tracks (track_id, title, artist_names, fetched_at)"
                " VALUES ('78', 'Cached Track', '{Cy}', now())"
            )
        )
    additions = PostgresLibraryAdditions(session_pool)

    album, _ = await additions.add(_item("alice", "77", T0))
    track, _ = await additions.add(_item("alice", "78", T0, LibraryItemKind.TRACK))
    unknown, _ = await additions.add(_item("alice", "79", T0))
    # The album's id names no cached track: a track item of id 77 learns nothing from it.
    other_kind, _ = await additions.add(_item("alice", "77", T0, LibraryItemKind.TRACK))
    again, created = await additions.add(_item("alice", "77", T0))

    assert (album.title, album.artist_names) == ("Cached Album", ("Ann", "Bo"))
    assert (track.title, track.artist_names) == ("Cached Track", ("Cy",))
    assert (unknown.title, unknown.artist_names) == (None, ())
    assert (other_kind.title, other_kind.artist_names) == (None, ())
    assert (again.id, again.title, created) == (album.id, "Cached Album", False)
