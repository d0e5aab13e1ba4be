"""Scratch databases on a PostgreSQL server, for tests, the fault suite and the benchmarks: each
run gets a database of its own, so concurrent runs and leftovers never meet."""

from __future__ import annotations

import secrets

import asyncpg
from sqlalchemy.engine import make_url

from adapters.postgres.database import async_url


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy or libpq URL as asyncpg (and libpq tools) take it."""
    return async_url(url).replace("postgresql+asyncpg://", "postgresql://", 1)


async def create_scratch_database(server_url: str, prefix: str) -> tuple[str, str]:
    """A fresh `<prefix>_<random>` database on the server: (its name, its SQLAlchemy URL)."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    url = make_url(async_url(server_url)).set(database=name)
    return name, url.render_as_string(hide_password=False)


async def drop_scratch_database(server_url: str, name: str) -> None:
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _admin(server_url: str, statement: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()
