"""The cap on a user's pending scheduling jobs, folded into the add's one statement (ADR 0022),
against a real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.library_additions import PostgresLibraryAdditions
from application.errors import TooManyPendingAdds
from domain.library import LibraryItem, LibraryItemKind
from domain.values import CatalogId, UserId

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _album(user: str, catalog_id: str) -> LibraryItem:
    return LibraryItem.new(
        user_id=UserId(user), kind=LibraryItemKind.ALBUM, catalog_id=CatalogId(catalog_id), at=T0
    )


async def _rows(engine: AsyncEngine, user: str) -> tuple[int, int]:
    async with engine.connect() as connection:
        items = await connection.execute(
            text("SELECT count(*) FROM library_items WHERE user_id = :user"), {"user": user}
        )
        jobs = await connection.execute(
            text(
                "SELECT count(*) FROM scheduling_jobs JOIN library_items"
                " ON library_items.id = scheduling_jobs.library_item_id"
                " WHERE library_items.user_id = :user"
            ),
            {"user": user},
        )
        return int(items.scalar_one()), int(jobs.scalar_one())


async def test_a_new_item_past_the_cap_is_refused_and_writes_nothing(
    engine: AsyncEngine, session_pool: asyncpg.Pool
) -> None:
    additions = PostgresLibraryAdditions(session_pool)
    for n in range(3):
        _, created = await additions.add(_album("alice", str(n)), max_pending=3)
        assert created

    with pytest.raises(TooManyPendingAdds) as refused:
        await additions.add(_album("alice", "99"), max_pending=3)

    assert refused.value.limit == 3
    assert await _rows(engine, "alice") == (3, 3)


async def test_a_re_add_at_the_cap_answers_the_existing_item(
    engine: AsyncEngine, session_pool: asyncpg.Pool
) -> None:
    additions = PostgresLibraryAdditions(session_pool)
    first = _album("alice", "1")
    await additions.add(first, max_pending=1)

    stored, created = await additions.add(_album("alice", "1"), max_pending=1)

    assert (stored.id, created) == (first.id, False)
    assert await _rows(engine, "alice") == (1, 1)


async def test_one_users_pending_jobs_do_not_count_against_another(
    engine: AsyncEngine, session_pool: asyncpg.Pool
) -> None:
    additions = PostgresLibraryAdditions(session_pool)
    await additions.add(_album("alice", "1"), max_pending=1)

    _, created = await additions.add(_album("bob", "1"), max_pending=1)

    assert created
    assert await _rows(engine, "bob") == (1, 1)


@pytest.mark.parametrize("settled", ["done", "failed"])
async def test_adds_are_taken_again_once_pending_jobs_settle(
    engine: AsyncEngine, session_pool: asyncpg.Pool, settled: str
) -> None:
    additions = PostgresLibraryAdditions(session_pool)
    await additions.add(_album("alice", "1"), max_pending=1)
    with pytest.raises(TooManyPendingAdds):
        await additions.add(_album("alice", "2"), max_pending=1)

    async with engine.begin() as connection:
        await connection.execute(text("UPDATE scheduling_jobs SET status = :s"), {"s": settled})
    _, created = await additions.add(_album("alice", "2"), max_pending=1)

    assert created


async def test_removing_a_pending_item_frees_its_place_under_the_cap(
    engine: AsyncEngine, session_pool: asyncpg.Pool
) -> None:
    additions = PostgresLibraryAdditions(session_pool)
    first, _ = await additions.add(_album("alice", "1"), max_pending=1)

    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM library_items WHERE id = :id"), {"id": first.id})
    _, created = await additions.add(_album("alice", "2"), max_pending=1)

    assert created


async def test_the_owners_pending_jobs_are_counted_from_the_partial_index(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("SET LOCAL enable_seqscan = off"))
        plan = await connection.execute(
            text(
                "EXPLAIN SELECT count(*) FROM (SELECT FROM scheduling_jobs"
                " WHERE user_id = 'alice' AND status = 'pending' LIMIT 1000) AS pending"
            )
        )
        lines = "\n".join(row[0] for row in plan)

    assert "ix_scheduling_jobs_pending_by_user" in lines


async def test_without_a_cap_every_new_item_is_stored(
    engine: AsyncEngine, session_pool: asyncpg.Pool
) -> None:
    additions = PostgresLibraryAdditions(session_pool)
    for n in range(5):
        _, created = await additions.add(_album("alice", str(n)), max_pending=None)
        assert created

    assert await _rows(engine, "alice") == (5, 5)
