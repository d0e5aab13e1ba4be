"""The add as one SQL statement on asyncpg: the item, its scheduling job and the relays'
wake-up, in one round trip and one implicit transaction (ADR 0016)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from adapters.postgres.database import LOST_DATABASE
from adapters.postgres.tables import SCHEDULING_CHANNEL
from application.errors import TooManyPendingAdds
from application.ports.unit_of_work import StorageUnavailable
from domain.library import LibraryItem, LibraryItemKind, SchedulingStatus
from domain.values import CatalogId, LibraryItemId, UserId

# The add statement's answers.
_CREATED, _EXISTING, _REFUSED = "created", "existing", "refused"

# One statement is one transaction: the item, its job and the NOTIFY commit together or not at
# all, with no BEGIN/COMMIT round trips. The job is inserted only from the row the item insert
# returned, so a re-add writes nothing. The second branch answers a re-add with the stored row;
# it reads the statement's snapshot, so a row committed by a concurrent add after the snapshot
# was taken (ON CONFLICT waited for it) is not visible here: `add` then reads it afresh.
# The item is inserted only while its owner has fewer than $8 pending jobs (ADR 0022), counted
# from a partial index and never past $8 entries (CASE, unlike OR, guarantees that a NULL cap
# counts nothing); the third branch answers such a refusal, unless the item is already there
# (a re-add writes no job, so the cap does not apply to it).
# A new item takes its title and artists from the catalogue cache when the cache knows its
# album or track (one primary-key read; the relay writes them later otherwise), so the add
# can answer them.
# A re-add of a kind that changes ($9, `LibraryItemKind.resyncs_on_readd`: playlists) whose job
# has ended puts the job back to pending and unlinks the item's tracks, so the relay reads the
# item again (ADR 0029); only while the cap is open, and never a job still pending, which will
# read the item as it is anyway, unless a relay has claimed it: that run may have read the
# changed part already, so it is noted (`resync_requested`) and its finish puts the job back.
# Data-modifying CTEs run whether or not they are referenced.
# The refusal's lookup sits in a CASE so that it runs only when the cap is closed: written as
# `NOT quota.open AND NOT EXISTS (...)`, PostgreSQL ran the NOT EXISTS first, on every add, and
# the generic plan asyncpg's prepared statement settles on reads the owner's items through
# (user_id, kind, added_at, id) with catalog_id as a filter: every new add read every item its
# owner had of that kind (0.65 ms of server CPU at 2,000 items, growing with them; bench/).
# Any other re-add of an item whose scheduling failed puts its job back to pending: adding it
# again is how a user retries it (ADR 0028). Either wakes the relays.
_ADD = f"""
WITH quota AS (
    SELECT CASE WHEN $8::integer IS NULL THEN true ELSE (
        SELECT count(*) FROM (
            SELECT FROM scheduling_jobs
            WHERE user_id = $2 AND status = '{SchedulingStatus.PENDING.value}'
            LIMIT $8
        ) AS pending
    ) < $8 END AS open
), inserted AS (
    INSERT INTO library_items (id, user_id, kind, catalog_id, added_at, title, artist_names)
    SELECT $1::uuid, $2::text, $3::text, $4::text, $5::timestamptz,
           COALESCE($6::text, known.title), COALESCE(known.artist_names, $7::text[])
    FROM quota
    LEFT JOIN (
        SELECT title, artist_names FROM catalog_albums
        WHERE $3::text = '{LibraryItemKind.ALBUM.value}' AND album_id = $4::text
        UNION ALL
        SELECT title, artist_names FROM catalog_tracks
        WHERE $3::text = '{LibraryItemKind.TRACK.value}' AND track_id = $4::text
    ) AS known ON $6::text IS NULL
    WHERE quota.open
    ON CONFLICT ON CONSTRAINT uq_library_items_owner_item DO NOTHING
    RETURNING id, title, artist_names
), job AS (
    INSERT INTO scheduling_jobs
        (library_item_id, user_id, status, attempts, run_after, created_at, updated_at)
    SELECT id, $2, '{SchedulingStatus.PENDING.value}', 0, $5, $5, $5 FROM inserted
    RETURNING library_item_id
), resynced AS (
    UPDATE scheduling_jobs AS job
    SET status = '{SchedulingStatus.PENDING.value}', attempts = 0, last_error = NULL,
        run_after = $5, updated_at = $5, locked_by = NULL, locked_until = NULL,
        resync_requested = false
    FROM library_items AS item, quota
    WHERE $9::boolean AND quota.open
      AND item.user_id = $2 AND item.kind = $3 AND item.catalog_id = $4
      AND job.library_item_id = item.id AND job.status <> '{SchedulingStatus.PENDING.value}'
    RETURNING job.library_item_id
), unlinked AS (
    DELETE FROM item_tracks WHERE library_item_id IN (SELECT library_item_id FROM resynced)
), reopened AS (
    UPDATE scheduling_jobs AS failed
    SET status = '{SchedulingStatus.PENDING.value}', attempts = 0, run_after = $5,
        locked_by = NULL, locked_until = NULL, updated_at = $5
    FROM library_items AS item, quota
    WHERE NOT ($9::boolean AND quota.open)
      AND item.user_id = $2 AND item.kind = $3 AND item.catalog_id = $4
      AND failed.library_item_id = item.id
      AND failed.status = '{SchedulingStatus.FAILED.value}'
      AND NOT EXISTS (SELECT FROM inserted)
    RETURNING failed.library_item_id
), flagged AS (
    UPDATE scheduling_jobs AS job SET resync_requested = true
    FROM library_items AS item
    WHERE $9::boolean AND item.user_id = $2 AND item.kind = $3 AND item.catalog_id = $4
      AND job.library_item_id = item.id AND job.status = '{SchedulingStatus.PENDING.value}'
      AND job.locked_by IS NOT NULL
)
SELECT '{_CREATED}' AS outcome, library_item_id AS id, NULL::timestamptz AS added_at,
       inserted.title, inserted.artist_names,
       pg_notify('{SCHEDULING_CHANNEL}', library_item_id::text)::text AS woken
FROM job JOIN inserted ON inserted.id = job.library_item_id
UNION ALL
SELECT '{_EXISTING}', id, added_at, title, artist_names,
       (SELECT pg_notify('{SCHEDULING_CHANNEL}', library_item_id::text) FROM (
            SELECT library_item_id FROM resynced
            UNION ALL SELECT library_item_id FROM reopened
        ) AS woken)::text
FROM library_items
WHERE user_id = $2 AND kind = $3 AND catalog_id = $4 AND NOT EXISTS (SELECT FROM inserted)
UNION ALL
SELECT '{_REFUSED}', NULL, NULL, NULL, NULL, NULL
FROM quota
WHERE CASE WHEN quota.open THEN false ELSE NOT EXISTS (
    SELECT FROM library_items WHERE user_id = $2 AND kind = $3 AND catalog_id = $4
) END
"""

_FIND = """
SELECT id, added_at, title, artist_names FROM library_items
WHERE user_id = $1 AND kind = $2 AND catalog_id = $3
"""


class PostgresLibraryAdditions:
    def __init__(self, pool: asyncpg.Pool, *, acquire_timeout: float = 5.0) -> None:
        self._pool = pool
        self._acquire_timeout = acquire_timeout

    async def add(
        self, item: LibraryItem, *, max_pending: int | None = None
    ) -> tuple[LibraryItem, bool]:
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
                max_pending,
                item.kind.resyncs_on_readd,
            )
            if row is None:
                # Lost the race to a concurrent add committed after this statement's snapshot.
                row = await connection.fetchrow(
                    _FIND, item.user_id, item.kind.value, item.catalog_id.value
                )
                if row is None:  # added and removed meanwhile: the caller may simply retry
                    raise StorageUnavailable(
                        "the item was removed while being added; retry the add"
                    )
                return _existing(item.user_id, item.kind, item.catalog_id, row), False
        if row["outcome"] == _CREATED:
            if row["title"] is None:
                return item, True
            described = replace(
                item, title=row["title"], artist_names=tuple(row["artist_names"] or ())
            )
            return described, True
        if row["outcome"] == _REFUSED and max_pending is not None:
            raise TooManyPendingAdds(max_pending)
        return _existing(item.user_id, item.kind, item.catalog_id, row), False

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[PoolConnectionProxy]:
        # A timeout makes asyncpg run the acquisition as a task of its own (an extra task and
        # loop turn per add, bench/); it only matters when the add must wait for a connection.
        timeout = None if self._pool.get_idle_size() > 0 else self._acquire_timeout
        try:
            async with self._pool.acquire(timeout=timeout) as connection:
                yield connection
        except LOST_DATABASE as error:
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
