"""Playlists in PostgreSQL (ADR 0029): the schema's per-kind id check, and the re-sync a re-add
of an ended playlist makes inside the add's one statement (or, mid-run, at the run's finish)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.database import driver_url
from adapters.postgres.library_additions import PostgresLibraryAdditions
from adapters.postgres.tables import SCHEDULING_CHANNEL
from adapters.postgres.unit_of_work import PostgresUnitOfWorkFactory
from application.errors import TooManyPendingAdds
from application.ports.scheduling import ItemTrackLink
from domain.library import LibraryItem, LibraryItemKind
from domain.values import CatalogId, UserId

T0 = datetime(2026, 3, 1, tzinfo=UTC)
PLAYLIST = "5a3b1e00-0000-4000-8000-00000000d001"


def _item(
    catalog_id: str, kind: LibraryItemKind = LibraryItemKind.PLAYLIST, at: datetime = T0
) -> LibraryItem:
    return LibraryItem.new(
        user_id=UserId("alice"), kind=kind, catalog_id=CatalogId(catalog_id), at=at
    )


async def _job(engine: AsyncEngine, item: LibraryItem) -> dict[str, object]:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT status, attempts, last_error, run_after, locked_by"
                    " FROM scheduling_jobs WHERE library_item_id = :id"
                ),
                {"id": item.id},
            )
        ).one()
    return dict(row._mapping)


async def _end(engine: AsyncEngine, item: LibraryItem, status: str, *, links: int = 3) -> None:
    """The item's job ended as the relay ends it, with `links` tracks linked."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE scheduling_jobs SET status = :status, attempts = 4,"
                " last_error = :error WHERE library_item_id = :id"
            ),
            {"status": status, "id": item.id, "error": "gone" if status == "failed" else None},
        )
        for position in range(links):
            await connection.execute(
                text(
                    "INSERT INTO item_tracks (library_item_id, position, track_id, isrc)"
                    " VALUES (:id, :position, :track, NULL)"
                ),
                {"id": item.id, "position": position, "track": str(100 + position)},
            )


async def _links(engine: AsyncEngine, item: LibraryItem) -> int:
    async with engine.connect() as connection:
        count = await connection.execute(
            text("SELECT count(*) FROM item_tracks WHERE library_item_id = :id"), {"id": item.id}
        )
        return int(count.scalar_one())


@pytest.mark.parametrize(
    ("kind", "catalog_id"),
    [
        ("playlist", "396698918"),
        ("album", PLAYLIST),
        ("track", PLAYLIST),
        ("playlist", PLAYLIST.upper()),  # stored in lower case only
        ("podcast", "1"),
    ],
)
async def test_the_schema_refuses_an_id_of_another_kinds_form(
    engine: AsyncEngine, kind: str, catalog_id: str
) -> None:
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO library_items (id, user_id, kind, catalog_id, added_at)"
                    " VALUES (gen_random_uuid(), 'alice', :kind, :catalog_id, now())"
                ),
                {"kind": kind, "catalog_id": catalog_id},
            )


@pytest.mark.parametrize("ended", ["done", "failed"])
async def test_re_adding_an_ended_playlist_puts_its_job_back_and_unlinks_its_tracks(
    engine: AsyncEngine, session_pool: asyncpg.Pool, ended: str
) -> None:
    additions = PostgresLibraryAdditions(session_pool)
    playlist, _ = await additions.add(_item(PLAYLIST))
    await _end(engine, playlist, ended)

    again, created = await additions.add(_item(PLAYLIST, at=T0 + timedelta(hours=1)))

    assert not created
    assert again == playlist
    assert await _job(engine, playlist) == {
        "status": "pending",
        "attempts": 0,
        "last_error": None,
        "run_after": T0 + timedelta(hours=1),
        "locked_by": None,
    }
    assert await _links(engine, playlist) == 0


async def test_re_adding_a_pending_playlist_or_an_ended_album_changes_nothing(
    engine: AsyncEngine, session_pool: asyncpg.Pool
) -> None:
    additions = PostgresLibraryAdditions(session_pool)
    playlist, _ = await additions.add(_item(PLAYLIST))
    album, _ = await additions.add(_item("396698918", LibraryItemKind.ALBUM))
    await _end(engine, album, "done")
    jobs_before = [await _job(engine, playlist), await _job(engine, album)]

    await additions.add(_item(PLAYLIST, at=T0 + timedelta(hours=1)))
    await additions.add(_item("396698918", LibraryItemKind.ALBUM, at=T0 + timedelta(hours=1)))

    assert [await _job(engine, playlist), await _job(engine, album)] == jobs_before
    assert await _links(engine, album) == 3


async def test_a_re_sync_waits_for_the_owners_pending_cap(
    engine: AsyncEngine, session_pool: asyncpg.Pool
) -> None:
    additions = PostgresLibraryAdditions(session_pool)
    playlist, _ = await additions.add(_item(PLAYLIST))
    await _end(engine, playlist, "done")
    await additions.add(_item("1", LibraryItemKind.ALBUM))  # the one pending job the cap allows

    again, created = await additions.add(_item(PLAYLIST), max_pending=1)
    with pytest.raises(TooManyPendingAdds):
        await additions.add(_item("2", LibraryItemKind.ALBUM), max_pending=1)

    assert (again.id, created) == (playlist.id, False)
    assert (await _job(engine, playlist))["status"] == "done"
    assert await _links(engine, playlist) == 3


async def test_a_re_sync_wakes_the_relays(
    engine: AsyncEngine, session_pool: asyncpg.Pool, database_url: str
) -> None:
    additions = PostgresLibraryAdditions(session_pool)
    playlist, _ = await additions.add(_item(PLAYLIST))
    await _end(engine, playlist, "done")
    listener = await asyncpg.connect(driver_url(database_url))
    heard: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(SCHEDULING_CHANNEL, lambda *args: heard.put_nowait(args[3]))
    try:
        await additions.add(_item(PLAYLIST))  # re-syncs
        await additions.add(_item(PLAYLIST))  # still pending: nothing to wake for

        assert await asyncio.wait_for(heard.get(), timeout=5) == str(playlist.id)
        async with session_pool.acquire() as connection:
            await connection.execute(f"NOTIFY {SCHEDULING_CHANNEL}, 'marker'")
        assert await asyncio.wait_for(heard.get(), timeout=5) == "marker"
    finally:
        await listener.close()


async def test_re_adding_a_playlist_while_its_job_runs_reads_it_again_after_the_run(
    engine: AsyncEngine, session_pool: asyncpg.Pool
) -> None:
    # The run may already have read the part that changed: its finish puts the job back.
    additions = PostgresLibraryAdditions(session_pool)
    playlist, _ = await additions.add(_item(PLAYLIST))
    uow_factory = PostgresUnitOfWorkFactory(engine)
    at = T0 + timedelta(minutes=1)
    async with uow_factory() as uow:
        [claimed] = await uow.jobs.claim(
            worker="relay", limit=1, lease=timedelta(seconds=15), now=at
        )
        await uow.ledger.link_tracks([ItemTrackLink(playlist.id, 0, CatalogId("100"), None)])
        await uow.commit()

    await additions.add(_item(PLAYLIST, at=at))  # re-added mid-run
    assert (await _job(engine, playlist))["status"] == "pending"
    async with uow_factory() as uow:
        await uow.jobs.finish([claimed.item_id], worker="relay", now=at + timedelta(seconds=5))
        await uow.commit()

    assert await _job(engine, playlist) == {
        "status": "pending",
        "attempts": 0,
        "last_error": None,
        "run_after": at + timedelta(seconds=5),
        "locked_by": None,
    }
    assert await _links(engine, playlist) == 0
    async with uow_factory() as uow:  # and the next run's finish ends it
        again = await uow.jobs.claim(
            worker="relay", limit=1, lease=timedelta(seconds=15), now=at + timedelta(seconds=6)
        )
        await uow.jobs.finish([playlist.id], worker="relay", now=at + timedelta(seconds=7))
        await uow.commit()
    assert [job.item_id for job in again] == [playlist.id]
    assert (await _job(engine, playlist))["status"] == "done"
