"""The add as one SQL statement on asyncpg: the item, its scheduling job and the relays'
wake-up, in one round trip and one implicit transaction (ADR 0016)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from adapters.postgres.tables import SCHEDULING_CHANNEL
from application.ports.unit_of_work import StorageUnavailable
from domain.library import LibraryItem, LibraryItemKind, SchedulingStatus
from domain.values import CatalogId, LibraryItemId, UserId

# One statement is one transaction: the item, its job and the NOTIFY commit together or not at
# all, with no BEGIN/COMMIT round trips. The job is inserted only from the row the item insert
# returned, so a re-add writes nothing. The second branch answers a re-add with the stored row;
# it reads the statement's snapshot, so a row committed by a concurrent add after the snapshot
# was taken (ON CONFLICT waited for it) is not visible here: `add` then reads it afresh.
_ADD = f"""
WITH inserted AS (
    INSERT INTO library_items (id, user_id, kind, catalog_id, added_at, title, artist_names)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT ON CONSTRAINT uq_library_items_owner_item DO NOTHING
    RETURNING id
), job AS (
    INSERT INTO scheduling_jobs
        (library_item_id, status, attempts, run_after, created_at, updated_at)
    SELECT id, '{SchedulingStatus.PENDING.value}', 0, $5, $5, $5 FROM inserted
    RETURNING library_item_id
)
SELECT true AS created, library_item_id AS id, NULL::timestamptz AS added_at,
       NULL::text AS title, NULL::text[] AS artist_names,
       pg_notify('{SCHEDULING_CHANNEL}', library_item_id::text)::text AS woken
FROM job
UNION ALL
SELECT false, id, added_at, title, artist_names, NULL
FROM library_items
WHERE user_id = $2 AND kind = $3 AND catalog_id = $4 AND NOT EXISTS (SELECT FROM inserted)
"""

_FIND = """
SELECT id, added_at, title, artist_names FROM library_items
WHERE user_id = $1 AND kind = $2 AND catalog_id = $3
"""

# What losing (or never reaching) the server looks like through asyncpg and its pool.
_CONNECTIVITY_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
    # What a connection the server ended while it sat in the pool may raise on its next use.
    asyncpg.exceptions.InternalClientError,
)


class PostgresLibraryAdditions:
    def __init__(self, pool: asyncpg.Pool, *, acquire_timeout: float = 5.0) -> None:
        self._pool = pool
        self._acquire_timeout = acquire_timeout

    async def add(self, item: LibraryItem) -> tuple[LibraryItem, bool]:
        async with self._connection() as connection:
            row = await connection.fetchrow(
                _ADD,
                item.id,
                item.user_id,
                item.kind.value,
                item.catalog_id.value,
                item.added_at,
                item.title,
                list(item.artist_names),
            )
            if row is None:
                # Lost the race to a concurrent add committed after this statement's snapshot.
                row = await connection.fetchrow(
                    _FIND, item.user_id, item.kind.value, item.catalog_id.value
                )
                if row is None:  # added and removed meanwhile: the caller may simply retry
                    raise RuntimeError("library item vanished while being added; retry the add")
                return _existing(item.user_id, item.kind, item.catalog_id, row), False
        if row["created"]:
            return item, True
        return _existing(item.user_id, item.kind, item.catalog_id, row), False

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[PoolConnectionProxy]:
        # A timeout makes asyncpg run the acquisition as a task of its own (an extra task and
        # loop turn per add, bench/); it only matters when the add must wait for a connection.
        timeout = None if self._pool.get_idle_size() > 0 else self._acquire_timeout
        try:
            async with self._pool.acquire(timeout=timeout) as connection:
                yield connection
        except _CONNECTIVITY_ERRORS as error:
            raise StorageUnavailable(
                f"the database is unreachable: {type(error).__name__}"
            ) from error


def _existing(
    user_id: UserId, kind: LibraryItemKind, catalog_id: CatalogId, row: asyncpg.Record
) -> LibraryItem:
    return LibraryItem(
        id=LibraryItemId(row["id"]),
        user_id=user_id,
        kind=kind,
        catalog_id=catalog_id,
        added_at=row["added_at"],
        title=row["title"],
        artist_names=tuple(row["artist_names"] or ()),
    )
