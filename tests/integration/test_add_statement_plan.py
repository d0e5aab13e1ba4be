"""The add's one statement (adapters/postgres/library_additions.py) under the plan its prepared
statement settles on: asyncpg prepares it once per connection, and after five runs PostgreSQL
may keep a generic plan, made without the parameters' values. Under that plan a new add must
read none of its owner's other items: an earlier form read every item the owner had of the
kind on every add (bench/, the add's CPU grew with the owner's library)."""

from __future__ import annotations

import uuid

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.database import SERVER_SETTINGS, driver_url
from adapters.postgres.library_additions import _ADD

PARAMETER_TYPES = "uuid, text, text, text, timestamptz, text, text[], integer, boolean"


async def _generic_plan_of_an_add(connection: asyncpg.Connection, catalog_id: str) -> list[str]:
    """EXPLAIN ANALYZE of a new track add by `heavy` under the generic plan, rolled back."""
    transaction = connection.transaction()
    await transaction.start()
    try:
        await connection.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        await connection.execute(f"PREPARE add_item({PARAMETER_TYPES}) AS {_ADD}")
        rows = await connection.fetch(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) EXECUTE add_item("
            f"'{uuid.uuid4()}', 'heavy', 'track', '{catalog_id}', now(), NULL, '{{}}', 1000,"
            " false)"
        )
        return [row[0] for row in rows]
    finally:
        await transaction.rollback()


async def test_a_new_add_reads_none_of_its_owners_other_items(
    engine: AsyncEngine, database_url: str
) -> None:
    connection = await asyncpg.connect(driver_url(database_url), server_settings=SERVER_SETTINGS)
    try:
        await connection.execute(
            "INSERT INTO library_items (id, user_id, kind, catalog_id, added_at)"
            " SELECT gen_random_uuid(), 'heavy', 'track', n::text, now()"
            " FROM generate_series(1, 2000) AS n"
        )

        plan = await _generic_plan_of_an_add(connection, "99999999")
    finally:
        await connection.close()

    assert any("Insert on library_items" in line for line in plan), "\n".join(plan)
    reads = [
        line
        for line in plan
        if "Scan" in line and "on library_items" in line and "never executed" not in line
    ]
    assert reads == [], "\n".join(plan)
