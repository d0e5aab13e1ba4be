"""The outbox seen from the relay: leased claims, shared fairly between users (ADR 0028), with
FOR UPDATE SKIP LOCKED."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import any_, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY, TEXT, UUID
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import TextClause

from adapters.postgres.library import row_to_item
from adapters.postgres.tables import SCHEDULING_CHANNEL, library_items, scheduling_jobs
from application.ports.scheduling import ClaimedJob, ItemDescription
from domain.library import LibraryItem, LibraryItemKind, SchedulingStatus
from domain.values import LibraryItemId

# Every statement below is built once, at import: the batch path runs them for every batch, and
# building (and compiling) a statement per call was a visible part of the relay's CPU.


def _claim(*, of_kind: bool) -> TextClause:
    """The fair claim of ADR 0028, which answers exactly as `domain.fair_share.claim_order`:
    each due job's turn is its owner's jobs under way (of the kinds claimed) plus its place
    among the owner's due jobs in arrival order; jobs whose turn reaches the cap stay; the rest
    go lowest turn first, then oldest, then by item id. Claimers take turns through an advisory
    lock (`_CLAIMS_ONE_AT_A_TIME`, run before this statement, so its snapshot sees the claims
    committed before it): two claims counting the same jobs under way could pass the cap."""
    # Only the jobs are locked (SKIP LOCKED), never their items: locking an item too would
    # make the claim wait behind a remove.
    kind_filter = "AND item.kind = ANY(:kinds)" if of_kind else ""
    return text(
        f"""
        WITH due AS (
            SELECT job.library_item_id, job.created_at, item.user_id
            FROM scheduling_jobs AS job
            JOIN library_items AS item ON item.id = job.library_item_id
            WHERE job.status = 'pending' AND job.run_after <= :now
              AND (job.locked_until IS NULL OR job.locked_until < :now)
              {kind_filter}
        ), under_way AS (
            SELECT item.user_id, count(*) AS jobs
            FROM scheduling_jobs AS job
            JOIN library_items AS item ON item.id = job.library_item_id
            WHERE job.status = 'pending' AND job.locked_until >= :now
              AND item.user_id IN (SELECT user_id FROM due)
              {kind_filter}
            GROUP BY item.user_id
        ), turns AS (
            SELECT due.library_item_id, due.created_at,
                   coalesce(under_way.jobs, 0) + row_number() OVER (
                       PARTITION BY due.user_id ORDER BY due.created_at, due.library_item_id
                   ) - 1 AS turn
            FROM due LEFT JOIN under_way ON under_way.user_id = due.user_id
        ), chosen AS (
            SELECT library_item_id, created_at, turn FROM turns
            WHERE CAST(:per_user_cap AS integer) IS NULL OR turn < :per_user_cap
            ORDER BY turn, created_at, library_item_id
            LIMIT :limit
        ), locked AS (
            SELECT library_item_id FROM scheduling_jobs
            WHERE library_item_id IN (SELECT library_item_id FROM chosen)
            FOR UPDATE SKIP LOCKED
        ), claimed AS (
            UPDATE scheduling_jobs AS job
            SET locked_by = :worker, locked_until = :lease_end, attempts = job.attempts + 1,
                updated_at = :now
            FROM locked
            WHERE job.library_item_id = locked.library_item_id
            RETURNING job.library_item_id, job.attempts, job.created_at
        )
        SELECT claimed.library_item_id, claimed.attempts, claimed.created_at
        FROM claimed JOIN chosen ON chosen.library_item_id = claimed.library_item_id
        ORDER BY chosen.turn, chosen.created_at, chosen.library_item_id
        """
    )


# Any constant both claimers agree on; transaction-scoped, so a commit (or rollback) frees it.
_CLAIMS_ONE_AT_A_TIME = text("SELECT pg_advisory_xact_lock(7202812028)")
_CLAIM = _claim(of_kind=False)
_CLAIM_OF_KIND = _claim(of_kind=True).bindparams(bindparam("kinds", type_=ARRAY(TEXT)))

_ITEM_IDS = bindparam("item_ids", type_=ARRAY(UUID(as_uuid=True)))

_EXTEND_LEASES = text(
    """
    UPDATE scheduling_jobs SET locked_until = :lease_end, updated_at = :now
    WHERE library_item_id = ANY(:item_ids) AND locked_by = :worker AND status = 'pending'
    RETURNING library_item_id
    """
).bindparams(_ITEM_IDS)

# A job whose item asked to be read again while it ran (ADR 0029) is pending again instead of
# done, due now, and its links go, as a re-sync's do; the statement answers how many.
_FINISH = text(
    f"""
    WITH finished AS (
        UPDATE scheduling_jobs
        SET status = CASE WHEN resync_requested THEN '{SchedulingStatus.PENDING.value}'
                          ELSE '{SchedulingStatus.DONE.value}' END,
            run_after = CASE WHEN resync_requested THEN :now ELSE run_after END,
            attempts = CASE WHEN resync_requested THEN 0 ELSE attempts END,
            resync_requested = false, last_error = NULL, locked_by = NULL, locked_until = NULL,
            updated_at = :now
        WHERE library_item_id = ANY(:item_ids) AND locked_by = :worker
        RETURNING library_item_id, status
    ), unlinked AS (
        DELETE FROM item_tracks WHERE library_item_id IN (
            SELECT library_item_id FROM finished
            WHERE status = '{SchedulingStatus.PENDING.value}'
        )
    )
    SELECT count(*) FROM finished WHERE status = '{SchedulingStatus.PENDING.value}'
    """
).bindparams(_ITEM_IDS)

# One statement text executed for many parameter sets (asyncpg's executemany: prepared once,
# sent in one round trip): each job has its own reason or time.
# A re-sync noted on the job is moot once it fails: whatever reopens it reads the item afresh.
_GIVE_UP = text(
    """
    UPDATE scheduling_jobs
    SET status = 'failed', last_error = :reason, locked_by = NULL, locked_until = NULL,
        resync_requested = false, updated_at = :now
    WHERE library_item_id = :item_id AND locked_by = :worker
    """
)

_RETRY_LATER = text(
    """
    UPDATE scheduling_jobs
    SET run_after = :run_after, last_error = :reason, locked_by = NULL, locked_until = NULL,
        updated_at = :now
    WHERE library_item_id = :item_id AND locked_by = :worker
    """
)

# Failed jobs back to pending, and a NOTIFY per job so that relays wake at once, as after an
# add. `item_ids` NULL: any failed job.
_REOPEN_FAILED = text(
    f"""
    WITH reopened AS (
        UPDATE scheduling_jobs AS job
        SET status = 'pending', attempts = 0, run_after = :now, locked_by = NULL,
            locked_until = NULL, updated_at = :now
        WHERE job.library_item_id IN (
            SELECT library_item_id FROM scheduling_jobs
            WHERE status = 'failed'
              AND (CAST(:item_ids AS uuid[]) IS NULL OR library_item_id = ANY(:item_ids))
            ORDER BY updated_at, library_item_id
            LIMIT :limit
            FOR UPDATE SKIP LOCKED
        )
        RETURNING job.library_item_id
    )
    SELECT library_item_id, pg_notify('{SCHEDULING_CHANNEL}', library_item_id::text)
    FROM reopened
    """
).bindparams(_ITEM_IDS)

# The same re-sync as a re-add's (library_additions.py), for any number of items at once.
_RESYNC = text(
    f"""
    WITH resynced AS (
        UPDATE scheduling_jobs AS job
        SET status = '{SchedulingStatus.PENDING.value}', attempts = 0, last_error = NULL,
            run_after = :now, updated_at = :now, locked_by = NULL, locked_until = NULL,
            resync_requested = false
        FROM library_items AS item
        WHERE item.id = job.library_item_id AND item.kind = ANY(:kinds)
          AND job.status <> '{SchedulingStatus.PENDING.value}'
          AND (CAST(:every AS boolean) OR job.library_item_id = ANY(:item_ids))
        RETURNING job.library_item_id
    ), unlinked AS (
        DELETE FROM item_tracks WHERE library_item_id IN (SELECT library_item_id FROM resynced)
    ), flagged AS (
        UPDATE scheduling_jobs AS job SET resync_requested = true
        FROM library_items AS item
        WHERE item.id = job.library_item_id AND item.kind = ANY(:kinds)
          AND job.status = '{SchedulingStatus.PENDING.value}' AND job.locked_by IS NOT NULL
          AND (CAST(:every AS boolean) OR job.library_item_id = ANY(:item_ids))
    )
    SELECT library_item_id FROM resynced
    """
).bindparams(_ITEM_IDS, bindparam("kinds", type_=ARRAY(TEXT)))
# One wake-up for the lot: the relays read no payload, and a claim takes whatever is due.
_WAKE = text(f"SELECT pg_notify('{SCHEDULING_CHANNEL}', 'resync')")

_ITEMS = select(library_items).where(library_items.c.id == any_(_ITEM_IDS))

# Executed for many parameter sets too: artist names are arrays of different lengths, which
# `unnest` cannot carry as one array per column.
_DESCRIBE = text(
    "UPDATE library_items SET title = :title, artist_names = :artist_names WHERE id = :item_id"
)


class PostgresSchedulingJobs:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def claim(
        self,
        *,
        worker: str,
        limit: int,
        lease: timedelta,
        now: datetime,
        kinds: Collection[LibraryItemKind] | None = None,
        per_user_cap: int | None = None,
    ) -> list[ClaimedJob]:
        parameters = {
            "worker": worker,
            "lease_end": now + lease,
            "now": now,
            "limit": limit,
            "per_user_cap": per_user_cap,
        }
        await self._connection.execute(_CLAIMS_ONE_AT_A_TIME)
        if kinds is None:
            rows = await self._connection.execute(_CLAIM, parameters)
        else:
            rows = await self._connection.execute(
                _CLAIM_OF_KIND, {**parameters, "kinds": sorted(kind.value for kind in kinds)}
            )
        return [
            ClaimedJob(item_id=LibraryItemId(item_id), attempts=attempts, enqueued_at=created)
            for item_id, attempts, created in rows
        ]

    async def extend_leases(
        self, item_ids: Sequence[LibraryItemId], *, worker: str, lease: timedelta, now: datetime
    ) -> set[LibraryItemId]:
        if not item_ids:
            return set()
        rows = await self._connection.execute(
            _EXTEND_LEASES,
            {"item_ids": list(item_ids), "worker": worker, "lease_end": now + lease, "now": now},
        )
        return {LibraryItemId(item_id) for (item_id,) in rows}

    async def finish(
        self, item_ids: Sequence[LibraryItemId], *, worker: str, now: datetime
    ) -> None:
        if not item_ids:
            return
        again = await self._connection.execute(
            _FINISH, {"item_ids": list(item_ids), "worker": worker, "now": now}
        )
        if again.scalar_one():
            await self._connection.execute(_WAKE)

    async def give_up(
        self, reasons: Mapping[LibraryItemId, str], *, worker: str, now: datetime
    ) -> None:
        if not reasons:
            return
        await self._connection.execute(
            _GIVE_UP,
            [
                {"item_id": item_id, "reason": reason, "worker": worker, "now": now}
                for item_id, reason in reasons.items()
            ],
        )

    async def retry_later(
        self,
        run_after: Mapping[LibraryItemId, datetime],
        *,
        worker: str,
        reason: str,
        now: datetime,
    ) -> None:
        if not run_after:
            return
        await self._connection.execute(
            _RETRY_LATER,
            [
                {
                    "item_id": item_id,
                    "run_after": when,
                    "reason": reason,
                    "worker": worker,
                    "now": now,
                }
                for item_id, when in run_after.items()
            ],
        )

    async def release(self, item_ids: Sequence[LibraryItemId], *, worker: str) -> None:
        """Hand leased jobs back at once (on shutdown), instead of letting the lease run out."""
        await self._connection.execute(
            scheduling_jobs.update()
            .where(
                scheduling_jobs.c.library_item_id.in_(list(item_ids)),
                scheduling_jobs.c.locked_by == worker,
                scheduling_jobs.c.status == SchedulingStatus.PENDING.value,
            )
            .values(locked_by=None, locked_until=None)
        )

    async def reopen_failed(
        self, *, now: datetime, item_ids: Sequence[LibraryItemId] | None = None, limit: int
    ) -> list[LibraryItemId]:
        rows = await self._connection.execute(
            _REOPEN_FAILED,
            {"now": now, "limit": limit, "item_ids": None if item_ids is None else list(item_ids)},
        )
        return [LibraryItemId(item_id) for item_id, _ in rows]

    async def items(self, item_ids: Sequence[LibraryItemId]) -> dict[LibraryItemId, LibraryItem]:
        if not item_ids:
            return {}
        rows = (await self._connection.execute(_ITEMS, {"item_ids": list(item_ids)})).mappings()
        found = (row_to_item(row) for row in rows)
        return {item.id: item for item in found}

    async def resync(
        self,
        item_ids: Sequence[LibraryItemId] | None,
        *,
        kinds: Collection[LibraryItemKind],
        now: datetime,
    ) -> list[LibraryItemId]:
        rows = await self._connection.execute(
            _RESYNC,
            {
                "now": now,
                "kinds": sorted(kind.value for kind in kinds),
                "every": item_ids is None,
                "item_ids": list(item_ids or ()),
            },
        )
        resynced = [LibraryItemId(item_id) for (item_id,) in rows]
        if resynced:
            await self._connection.execute(_WAKE)
        return resynced

    async def describe_items(self, descriptions: Sequence[ItemDescription]) -> None:
        if not descriptions:
            return
        await self._connection.execute(
            _DESCRIBE,
            [
                {
                    "item_id": description.item_id,
                    "title": description.title,
                    "artist_names": list(description.artist_names),
                }
                for description in descriptions
            ],
        )
