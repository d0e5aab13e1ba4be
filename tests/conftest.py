"""Shared fixtures: a real PostgreSQL database per test session, migrated by Alembic.

TEST_DATABASE_URL (this machine: postgresql://postgres@127.0.0.1:5432/test) names a server to
use; a fresh database is created on it for the session and dropped afterwards. Without it, an
embedded PostgreSQL server is started in a temporary directory."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.database import EmbeddedPostgres, async_url, create_engine
from adapters.postgres.migrate import upgrade_to_head

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


def _asyncpg_dsn(sqlalchemy_url: str) -> str:
    return async_url(sqlalchemy_url).replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture(scope="session")
async def database_url(postgres_server_url: str) -> AsyncIterator[str]:
    """A database of its own for this session, so concurrent runs and leftovers never meet."""
    name = f"libingest_test_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(_asyncpg_dsn(postgres_server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = make_url(async_url(postgres_server_url)).set(database=name)
    rendered = url.render_as_string(hide_password=False)
    engine = create_engine(rendered, pool_size=2)
    await upgrade_to_head(engine)
    await engine.dispose()
    yield rendered
    admin = await asyncpg.connect(_asyncpg_dsn(postgres_server_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def session_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=10)
    yield engine
    await engine.dispose()


@pytest.fixture
async def engine(session_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The session's engine over an emptied database."""
    async with session_engine.begin() as connection:
        tables = await connection.exec_driver_sql(_TABLES_TO_EMPTY_QUERY)
        names = tables.scalar()
        if names:
            await connection.exec_driver_sql(f"TRUNCATE {names} CASCADE")
    yield session_engine
