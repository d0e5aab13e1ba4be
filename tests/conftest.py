"""Shared fixtures: a real PostgreSQL database per test session, migrated by Alembic.

TEST_DATABASE_URL (this machine: postgresql://postgres@127.0.0.1:5432/test) names a server to
use; a fresh database is created on it for the session and dropped afterwards. Without it, an
embedded PostgreSQL server is started in a temporary directory."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.database import EmbeddedPostgres, create_engine, create_pool
from adapters.postgres.migrate import upgrade_to_head
from tests.support.scratch_database import (
    create_scratch_database,
    drop_scratch_database,
)

# Every table the migrations create, emptied between tests (order irrelevant with CASCADE).
_TABLES_TO_EMPTY_QUERY = """
SELECT string_agg(format('%I', tablename), ', ')
FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'
"""


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    with tempfile.TemporaryDirectory(prefix="libingest-pg-") as directory:
        server = EmbeddedPostgres(Path(directory))
        url = server.start()
        try:
            yield url
        finally:
            server.stop()


@pytest.fixture(scope="session")
async def database_url(postgres_server_url: str) -> AsyncIterator[str]:
    """A database of its own for this session, migrated to the latest revision."""
    name, url = await create_scratch_database(postgres_server_url, "libingest_test")
    engine = create_engine(url, pool_size=2)
    await upgrade_to_head(engine)
    await engine.dispose()
    yield url
    await drop_scratch_database(postgres_server_url, name)


@pytest.fixture(scope="session")
async def session_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=10)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def session_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, size=10)
    yield pool
    await pool.close()


@pytest.fixture
async def engine(session_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The session's engine over an emptied database."""
    async with session_engine.begin() as connection:
        tables = await connection.exec_driver_sql(_TABLES_TO_EMPTY_QUERY)
        names = tables.scalar()
        if names:
            await connection.exec_driver_sql(f"TRUNCATE {names} CASCADE")
    yield session_engine
