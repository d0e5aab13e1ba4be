"""The progress reader's counts against a real server: each of an item's tracks counted once, by
its ledger row's state, a track without ISRC or unavailable as skipped (named in album order),
and an item without links (or without a job) as zeros. The statement's shape is chosen for its
plan (adapters/postgres/progress.py, ADR 0033); these are the answers it must keep."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.database import create_engine, create_pool
from adapters.postgres.library_additions import PostgresLibraryAdditions
from adapters.postgres.progress import PostgresProgressReader
from adapters.postgres.unit_of_work import PostgresUnitOfWorkFactory
from application.ports.scheduling import ItemTrackLink
from domain.library import (
    IngestionProgress,
    LibraryItem,
    LibraryItemKind,
    SchedulingStatus,
    SkippedTrack,
    SkipReason,
)
from domain.values import CatalogId, Isrc, LibraryItemId, UserId

T0 = datetime(2026, 3, 1, tzinfo=UTC)

# ISRC -> the state of its ledger row (None: no row yet).
LEDGER = {
    "QZAAA2600001": "requested",
    "QZAAA2600002": "dispatched",
    "QZAAA2600003": "indexed",
    "QZAAA2600004": "indexed",
    "QZAAA2600005": "failed",
    "QZAAA2600006": None,
}


def _album(catalog_id: str) -> LibraryItem:
    return LibraryItem.new(
        user_id=UserId("alice"),
        kind=LibraryItemKind.ALBUM,
        catalog_id=CatalogId(catalog_id),
        at=T0,
    )


async def test_each_track_is_counted_once_by_its_ledger_state(
    engine: AsyncEngine, session_pool: asyncpg.Pool
) -> None:
    additions = PostgresLibraryAdditions(session_pool)
    album, _ = await additions.add(_album("100"))
    bare, _ = await additions.add(_album("200"))
    # An ISRC shared with another item is still counted once for this one.
    other, _ = await additions.add(_album("300"))
    links = [
        ItemTrackLink(album.id, position, CatalogId(str(1000 + position)), Isrc(isrc))
        for position, isrc in enumerate(LEDGER)
    ]
    links.append(ItemTrackLink(album.id, len(LEDGER), CatalogId("1999"), None))
    links.append(ItemTrackLink(album.id, len(LEDGER) + 1, CatalogId("1998"), None, available=False))
    links.append(ItemTrackLink(other.id, 0, CatalogId("1003"), Isrc("QZAAA2600003")))
    uow_factory = PostgresUnitOfWorkFactory(engine)
    async with uow_factory() as uow:
        await uow.ledger.link_tracks(links)
        await uow.commit()
    async with engine.begin() as connection:
        for isrc, state in LEDGER.items():
            if state is None:
                continue
            await connection.execute(
                text(
                    "INSERT INTO isrc_ledger (isrc, state, event_id, track_id, attempts,"
                    " requested_at, next_attempt_at, updated_at)"
                    " VALUES (:isrc, :state, :event, '1', 0, :at, :at, :at)"
                ),
                {"isrc": isrc, "state": state, "event": f"e:{isrc}", "at": T0},
            )
        await connection.execute(
            text(
                "UPDATE scheduling_jobs SET status = 'failed', last_error = 'gone'"
                " WHERE library_item_id = :id"
            ),
            {"id": bare.id},
        )
    unknown = LibraryItemId(uuid.UUID(int=1))

    async with uow_factory() as uow:
        progress = await uow.progress.for_items([album.id, bare.id, other.id, unknown])

    assert progress[album.id] == IngestionProgress(
        scheduling=SchedulingStatus.PENDING,
        tracks_total=8,
        tracks_requested=2,
        tracks_indexed=2,
        tracks_skipped=2,
        tracks_failed=1,
        skipped_tracks=(
            SkippedTrack(CatalogId("1999"), SkipReason.NO_ISRC),
            SkippedTrack(CatalogId("1998"), SkipReason.NOT_AVAILABLE),
        ),
    )
    assert progress[bare.id] == IngestionProgress(
        scheduling=SchedulingStatus.FAILED, last_error="gone"
    )
    assert progress[other.id] == IngestionProgress(tracks_total=1, tracks_indexed=1)
    assert progress[unknown] == IngestionProgress()


async def test_the_services_connections_run_without_jit(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1)
    pool = await create_pool(database_url, size=1)
    try:
        async with engine.connect() as connection:
            through_engine = (await connection.execute(text("SHOW jit"))).scalar_one()
        through_pool = await pool.fetchval("SHOW jit")
    finally:
        await engine.dispose()
        await pool.close()

    assert (through_engine, through_pool) == ("off", "off")


async def _plans_of_progress_reads(engine: AsyncEngine, item: LibraryItemId) -> tuple[int, int]:
    """Read progress ten times on the engine's one connection (asyncpg prepares the statement
    once there), as the service does: one item (`libraryItem`), then a page of 50 (`library`),
    in turn. Answer how many generic and custom plans PostgreSQL ran that statement with."""
    page = [item, *(LibraryItemId(uuid.UUID(int=n)) for n in range(1, 50))]
    for run in range(10):
        async with engine.connect() as connection:
            await PostgresProgressReader(connection).for_items(page if run % 2 else [item])
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0)"
                    " FROM pg_prepared_statements"
                    " WHERE statement LIKE '%FROM scheduling_jobs AS job%'"
                    "   AND statement NOT LIKE '%pg_prepared_statements%'"  # this one
                )
            )
        ).one()
    return int(row[0]), int(row[1])


async def test_the_engine_plans_each_read_for_the_tables_as_they_are_now(
    session_pool: asyncpg.Pool, database_url: str
) -> None:
    # A generic plan is made for the tables as they are when PostgreSQL switches to it (after
    # five runs, when the generic plan looks no dearer than the custom ones so far), and without
    # ANALYZE nothing replaces it as the tables grow: on a server without autovacuum, a plan
    # made at a thousand jobs (a sequential scan) was still run at a million (ADR 0033). The
    # engine's connections plan every run instead; the control, PostgreSQL's default, switches.
    item, _ = await PostgresLibraryAdditions(session_pool).add(_album("500"))
    service_engine = create_engine(database_url, pool_size=1)
    default_engine = create_engine(database_url, pool_size=1)
    try:
        async with default_engine.connect() as connection:
            # A session setting: it stays with the pool's one connection.
            await connection.execute(text("SET plan_cache_mode = auto"))
            await connection.commit()
        generic, custom = await _plans_of_progress_reads(service_engine, item.id)
        default_generic, _ = await _plans_of_progress_reads(default_engine, item.id)
    finally:
        await service_engine.dispose()
        await default_engine.dispose()

    assert (generic, custom) == (0, 10)
    assert default_generic > 0
