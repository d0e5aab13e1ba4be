"""The SQLAlchemy tables the adapters query mirror the tables and columns the migrations make: a
column added by a migration and not to the mirror (or the other way round), or of another type,
fails here rather than in a query at run time. Indexes are the migrations' alone."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres import catalog_tables  # noqa: F401  (its tables join the same metadata)
from adapters.postgres.tables import metadata


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": False}
    )
    return [
        difference
        for difference in compare_metadata(context, metadata)
        # Alembic's own bookkeeping table is not part of the mirror, nor are indexes.
        if not _names_table(difference, "alembic_version") and not _is_index(difference)
    ]


def _is_index(difference: Any) -> bool:
    return isinstance(difference, tuple) and difference[0] in {"add_index", "remove_index"}


def _names_table(difference: Any, name: str) -> bool:
    operation = difference[0] if isinstance(difference, tuple) else difference[0][0]
    table = difference[1] if isinstance(difference, tuple) else difference[0][2]
    return operation == "remove_table" and getattr(table, "name", table) == name


async def test_the_query_tables_mirror_the_migrated_schema(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        differences = await connection.run_sync(_differences)

    assert differences == [], "\n".join(map(str, differences))
