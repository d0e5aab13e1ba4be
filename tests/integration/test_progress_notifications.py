"""The progress notifications of migration 0007 and the feed that hears them, against a real
PostgreSQL: what each write announces, that a rolled-back write announces nothing, that large
writes stay under NOTIFY's payload limit, and that a lost LISTEN connection is not a silent
loss (ADR 0031)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.database import driver_url
from adapters.postgres.library_additions import PostgresLibraryAdditions
from adapters.postgres.notifications import PostgresListener, PostgresProgressChanges
from adapters.postgres.tables import PROGRESS_CHANNEL
from adapters.postgres.unit_of_work import PostgresUnitOfWorkFactory
from application.ports.progress_changes import ProgressChange
from application.ports.scheduling import ItemTrackLink
from domain.ingestion import IngestionRequest
from domain.library import LibraryItem, LibraryItemKind
from domain.values import CatalogId, Isrc, UserId

T0 = datetime(2026, 3, 1, tzinfo=UTC)
MARKER = "marker"
PAYLOAD_LIMIT = 8000  # bytes: PostgreSQL refuses a longer NOTIFY payload


class Heard:
    """Every payload on the progress channel, read up to a marker sent after the writes."""

    def __init__(self, listener: asyncpg.Connection, writer: asyncpg.Connection) -> None:
        self._listener = listener
        self._writer = writer
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    async def start(self) -> None:
        await self._listener.add_listener(
            PROGRESS_CHANNEL, lambda *args: self._queue.put_nowait(args[3])
        )

    async def since_last(self) -> list[str]:
        await self._writer.execute("SELECT pg_notify($1, $2)", PROGRESS_CHANNEL, MARKER)
        payloads = []
        while (payload := await asyncio.wait_for(self._queue.get(), timeout=5)) != MARKER:
            payloads.append(payload)
        return payloads

    async def decoded(self) -> list[dict[str, Any]]:
        return [json.loads(payload) for payload in await self.since_last()]


@pytest.fixture
async def heard(engine: AsyncEngine, database_url: str) -> AsyncIterator[Heard]:
    listener = await asyncpg.connect(driver_url(database_url))
    writer = await asyncpg.connect(driver_url(database_url))
    heard = Heard(listener, writer)
    await heard.start()
    try:
        yield heard
    finally:
        await listener.close()
        await writer.close()


async def _added_item(pool: asyncpg.Pool, user: str = "alice") -> LibraryItem:
    item = LibraryItem.new(
        user_id=UserId(user), kind=LibraryItemKind.ALBUM, catalog_id=CatalogId("5"), at=T0
    )
    stored, _ = await PostgresLibraryAdditions(pool).add(item)
    return stored


def _requests(item: LibraryItem, count: int) -> list[IngestionRequest]:
    return [
        IngestionRequest(
            isrc=Isrc(f"XXSMP{n:07d}"),
            track_id=CatalogId(str(n)),
            album_id=CatalogId("5"),
            library_item_id=item.id,
        )
        for n in range(1, count + 1)
    ]


async def test_ledger_writes_announce_the_isrcs_whose_state_moved(
    engine: AsyncEngine, session_pool: asyncpg.Pool, heard: Heard
) -> None:
    item = await _added_item(session_pool)
    uow_factory = PostgresUnitOfWorkFactory(engine)
    first, second = _requests(item, 2)
    await heard.since_last()

    async with uow_factory() as uow:
        await uow.ledger.record_requests([first, second], now=T0)
        await uow.commit()
    assert await heard.decoded() == [{"isrcs": [first.isrc.value, second.isrc.value]}]

    async with uow_factory() as uow:
        await uow.ledger.mark_dispatched([first.isrc], now=T0)
        await uow.commit()
    async with uow_factory() as uow:
        # A deferral moves the attempt count and the next attempt, not the state.
        await uow.ledger.defer_dispatch(
            [second.isrc], reason="queue down", retry_at=T0 + timedelta(1), now=T0
        )
        await uow.commit()
    async with uow_factory() as uow:
        await uow.ledger.mark_indexed(first.isrc, now=T0)
        await uow.commit()
    assert await heard.decoded() == [
        {"isrcs": [first.isrc.value]},  # dispatched
        {"isrcs": [first.isrc.value]},  # indexed
    ]


async def test_job_and_item_writes_announce_the_item_and_a_removal_its_owner(
    engine: AsyncEngine, session_pool: asyncpg.Pool, heard: Heard
) -> None:
    item = await _added_item(session_pool, user="bob")
    await heard.since_last()
    async with engine.begin() as connection:
        # A claim's columns: no announcement.
        await connection.execute(
            text("UPDATE scheduling_jobs SET locked_by = 'relay', locked_until = now()")
        )
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE scheduling_jobs SET status = 'done'"))
    async with PostgresUnitOfWorkFactory(engine)() as uow:
        await uow.ledger.link_tracks(
            [
                ItemTrackLink(item_id=item.id, position=n, track_id=CatalogId(str(n)), isrc=None)
                for n in range(3)
            ]
        )
        await uow.commit()
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE library_items SET title = 'An Album'"))
        await connection.execute(text("UPDATE library_items SET title = 'An Album'"))  # same
    async with PostgresUnitOfWorkFactory(engine)() as uow:
        assert await uow.library.remove(UserId("bob"), item.id)
        await uow.commit()

    item_id = str(item.id)
    assert await heard.decoded() == [
        {"items": [item_id]},  # the job's status
        {"items": [item_id]},  # three links, one announcement
        {"items": [item_id]},  # the title
        {"removed": [[item_id, "bob"]]},
    ]


async def test_a_rolled_back_write_announces_nothing(
    engine: AsyncEngine, session_pool: asyncpg.Pool, heard: Heard
) -> None:
    item = await _added_item(session_pool)
    await heard.since_last()
    async with PostgresUnitOfWorkFactory(engine)() as uow:
        await uow.ledger.record_requests(_requests(item, 3), now=T0)
        # no commit
    assert await heard.since_last() == []


async def test_a_large_write_is_announced_in_payloads_under_the_limit(
    engine: AsyncEngine, session_pool: asyncpg.Pool, heard: Heard
) -> None:
    item = await _added_item(session_pool)
    requests = _requests(item, 1000)
    await heard.since_last()
    async with PostgresUnitOfWorkFactory(engine)() as uow:
        await uow.ledger.record_requests(requests, now=T0)
        await uow.commit()

    payloads = await heard.since_last()
    assert len(payloads) == 3
    assert all(len(payload.encode()) < PAYLOAD_LIMIT for payload in payloads)
    announced = [isrc for payload in payloads for isrc in json.loads(payload)["isrcs"]]
    assert sorted(announced) == sorted(request.isrc.value for request in requests)


async def test_the_feed_merges_what_it_heard_and_says_everything_after_a_lost_connection(
    engine: AsyncEngine, session_pool: asyncpg.Pool, database_url: str
) -> None:
    listener = PostgresListener(database_url, reconnect_delay=0.05)
    changes = PostgresProgressChanges(listener)
    await changes.start()
    await listener.start()
    try:
        await asyncio.wait_for(listener.connected(), timeout=5)
        # Whatever committed before it listened is unknown to it: read everything.
        assert (await asyncio.wait_for(changes.next(), timeout=5)).everything
        item = await _added_item(session_pool)  # heard on the scheduling channel
        async with PostgresUnitOfWorkFactory(engine)() as uow:
            await uow.ledger.record_requests(_requests(item, 2), now=T0)
            await uow.commit()
        merged = ProgressChange()
        while not (merged.item_ids and merged.isrcs):
            change = await asyncio.wait_for(changes.next(), timeout=5)
            merged = ProgressChange(
                item_ids=merged.item_ids | change.item_ids, isrcs=merged.isrcs | change.isrcs
            )
        assert merged.item_ids == {item.id}
        assert merged.isrcs == {Isrc("XXSMP0000001"), Isrc("XXSMP0000002")}

        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
                    " AND datname = current_database()"
                )
            )
        after_loss = await asyncio.wait_for(changes.next(), timeout=5)
        assert after_loss.everything
    finally:
        await changes.stop()
        await listener.stop()
