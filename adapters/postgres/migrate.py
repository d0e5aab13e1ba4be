"""Applies the Alembic migrations: the only way the schema is made or changed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.database import lost_the_database
from application.ports.unit_of_work import StorageUnavailable

_MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant will do; it keeps two processes starting together from migrating at once.
_MIGRATION_LOCK_KEY = 7_412_006_001


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Raises StorageUnavailable when the database cannot be reached."""
    with _unreachable_as_storage_unavailable():
        async with engine.begin() as connection:
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
            )
            await connection.run_sync(_upgrade)


async def current_revision(engine: AsyncEngine) -> str | None:
    with _unreachable_as_storage_unavailable():
        return await _current_revision(engine)


async def _current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        exists = await connection.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
        if not exists:
            return None
        revision = await connection.scalar(text("SELECT version_num FROM alembic_version"))
        return str(revision) if revision is not None else None


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


@contextmanager
def _unreachable_as_storage_unavailable() -> Iterator[None]:
    try:
        yield
    except Exception as error:
        if lost_the_database(error):
            reason = type(error).__name__
            raise StorageUnavailable(f"the database is unreachable: {reason}") from error
        raise
