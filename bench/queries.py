"""The suite's reads of the service's database, in one place: what a section waits for and
what it checks afterwards. They follow the schema (adapters/postgres/tables.py and the
migrations), so a change there is a change here."""

from __future__ import annotations

from datetime import datetime

import asyncpg

# The sustained run's users are named user-0, user-1, ...
SUSTAINED_USERS = "user-%"


async def job(pool: asyncpg.Pool, item_id: str) -> tuple[str, datetime, datetime] | None:
    """The item's scheduling job: (status, created at, last updated at)."""
    row = await pool.fetchrow(
        "SELECT status, created_at, updated_at FROM scheduling_jobs"
        " WHERE library_item_id = $1::uuid",
        item_id,
    )
    return None if row is None else (str(row["status"]), row["created_at"], row["updated_at"])


async def pending_jobs(pool: asyncpg.Pool) -> int:
    """Jobs of the sustained run's users not yet done."""
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM scheduling_jobs j JOIN library_items i"
            " ON i.id = j.library_item_id WHERE i.user_id LIKE $1 AND j.status = 'pending'",
            SUSTAINED_USERS,
        )
        or 0
    )


async def undispatched(pool: asyncpg.Pool) -> int:
    """Ledger rows recorded but not yet sent to the queue."""
    return int(
        await pool.fetchval("SELECT count(*) FROM isrc_ledger WHERE state = 'requested'") or 0
    )


async def jobs_by_status(pool: asyncpg.Pool) -> dict[str, int]:
    """The sustained run's users' jobs, counted by status."""
    return {
        str(row["status"]): int(row["n"])
        for row in await pool.fetch(
            "SELECT j.status, count(*) AS n FROM scheduling_jobs j JOIN library_items i"
            " ON i.id = j.library_item_id WHERE i.user_id LIKE $1 GROUP BY j.status",
            SUSTAINED_USERS,
        )
    }


async def missing_from_ledger(pool: asyncpg.Pool) -> int:
    """ISRCs of the sustained run's items that never reached the ledger: lost requests."""
    missing = await pool.fetchval(
        "SELECT count(DISTINCT t.isrc) FROM item_tracks t JOIN library_items i"
        " ON i.id = t.library_item_id WHERE i.user_id LIKE $1 AND t.isrc IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM isrc_ledger l WHERE l.isrc = t.isrc)",
        SUSTAINED_USERS,
    )
    return int(missing or 0)
