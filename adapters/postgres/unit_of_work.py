"""The unit of work over PostgreSQL: one connection and one transaction, rolled back unless
committed."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from adapters.postgres.database import LOST_DATABASE, lost_the_database
from adapters.postgres.ledger import PostgresIsrcLedger
from adapters.postgres.library import PostgresLibraryRepository
from adapters.postgres.progress import PostgresProgressReader
from adapters.postgres.scheduling_jobs import PostgresSchedulingJobs
from application.ports.unit_of_work import StorageUnavailable


class PostgresUnitOfWork:
    library: PostgresLibraryRepository
    progress: PostgresProgressReader
    jobs: PostgresSchedulingJobs
    ledger: PostgresIsrcLedger

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._transaction: AsyncTransaction | None = None
        self._committed = False

    async def __aenter__(self) -> Self:
        try:
            self._connection = await self._engine.connect()
            self._transaction = await self._connection.begin()
        except LOST_DATABASE as error:
            if self._connection is not None:
                await _discard(self._connection)
                self._connection = None
            reason = type(error).__name__
            raise StorageUnavailable(f"the database is unreachable: {reason}") from error
        self._committed = False
        self.library = PostgresLibraryRepository(self._connection)
        self.progress = PostgresProgressReader(self._connection)
        self.jobs = PostgresSchedulingJobs(self._connection)
        self.ledger = PostgresIsrcLedger(self._connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._connection is not None and self._transaction is not None
        connection, transaction = self._connection, self._transaction
        self._connection = None
        self._transaction = None
        if exc_type is not None and not issubclass(exc_type, Exception):
            # Cancelled (or interrupted) in the middle of a statement: the driver's protocol
            # state is unknown, so the connection must never go back to the pool. Invalidating
            # discards it; the server rolls the transaction back when the socket closes.
            await asyncio.shield(_discard(connection))
            return
        try:
            if not self._committed and transaction.is_active:
                await transaction.rollback()
        except LOST_DATABASE:
            pass  # the server is gone, and with it the transaction
        finally:
            with contextlib.suppress(*LOST_DATABASE):
                await connection.close()
        if exc is not None and lost_the_database(exc):
            raise StorageUnavailable(
                f"the database connection was lost: {type(exc).__name__}"
            ) from exc

    async def commit(self) -> None:
        assert self._transaction is not None, "commit outside the unit of work"
        await self._transaction.commit()
        self._committed = True


async def _discard(connection: AsyncConnection) -> None:
    with contextlib.suppress(Exception):
        await connection.invalidate()
    with contextlib.suppress(Exception):
        await connection.close()


class PostgresUnitOfWorkFactory:
    """Makes a fresh unit of work per business transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def __call__(self) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(self._engine)
