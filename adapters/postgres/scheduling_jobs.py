"""The outbox seen from the relay: leased claims with FOR UPDATE SKIP LOCKED."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.postgres.library import row_to_item
from adapters.postgres.tables import library_items, scheduling_jobs
from application.ports.scheduling import ClaimedJob
from domain.library import LibraryItem, SchedulingStatus
from domain.values import LibraryItemId

_CLAIM = text(
    """
    UPDATE scheduling_jobs AS job
    SET locked_by = :worker, locked_until = :lease_end, attempts = job.attempts + 1,
        updated_at = :now
    FROM (
        SELECT library_item_id FROM scheduling_jobs
        WHERE status = 'pending' AND run_after <= :now
          AND (locked_until IS NULL OR locked_until < :now)
        ORDER BY run_after
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    ) AS due
    WHERE job.library_item_id = due.library_item_id
    RETURNING job.library_item_id, job.attempts, job.created_at
    """
)


class PostgresSchedulingJobs:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def claim(
        self, *, worker: str, limit: int, lease: timedelta, now: datetime
    ) -> list[ClaimedJob]:
        rows = await self._connection.execute(
            _CLAIM, {"worker": worker, "lease_end": now + lease, "now": now, "limit": limit}
        )
        return [
            ClaimedJob(item_id=LibraryItemId(item_id), attempts=attempts, enqueued_at=created)
            for item_id, attempts, created in rows
        ]

    async def extend_lease(
        self, item_id: LibraryItemId, *, worker: str, lease: timedelta, now: datetime
    ) -> bool:
        result = await self._connection.execute(
            scheduling_jobs.update()
            .where(
                scheduling_jobs.c.library_item_id == item_id,
                scheduling_jobs.c.locked_by == worker,
                scheduling_jobs.c.status == SchedulingStatus.PENDING.value,
            )
            .values(locked_until=now + lease, updated_at=now)
            .returning(scheduling_jobs.c.library_item_id)
        )
        return result.first() is not None

    async def finish(self, item_id: LibraryItemId, *, worker: str, now: datetime) -> None:
        await self._settle(item_id, worker, now, status=SchedulingStatus.DONE, last_error=None)

    async def give_up(
        self, item_id: LibraryItemId, *, worker: str, reason: str, now: datetime
    ) -> None:
        await self._settle(item_id, worker, now, status=SchedulingStatus.FAILED, last_error=reason)

    async def retry_later(
        self,
        item_id: LibraryItemId,
        *,
        worker: str,
        reason: str,
        run_after: datetime,
        now: datetime,
    ) -> None:
        await self._connection.execute(
            scheduling_jobs.update()
            .where(
                scheduling_jobs.c.library_item_id == item_id,
                scheduling_jobs.c.locked_by == worker,
            )
            .values(
                run_after=run_after,
                last_error=reason,
                locked_by=None,
                locked_until=None,
                updated_at=now,
            )
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

    async def item(self, item_id: LibraryItemId) -> LibraryItem | None:
        query = select(library_items).where(library_items.c.id == item_id)
        row = (await self._connection.execute(query)).mappings().first()
        return row_to_item(row) if row is not None else None

    async def describe_item(
        self, item_id: LibraryItemId, *, title: str, artist_names: Sequence[str]
    ) -> None:
        await self._connection.execute(
            library_items.update()
            .where(library_items.c.id == item_id)
            .values(title=title, artist_names=list(artist_names))
        )

    async def _settle(
        self,
        item_id: LibraryItemId,
        worker: str,
        now: datetime,
        *,
        status: SchedulingStatus,
        last_error: str | None,
    ) -> None:
        await self._connection.execute(
            scheduling_jobs.update()
            .where(
                scheduling_jobs.c.library_item_id == item_id,
                scheduling_jobs.c.locked_by == worker,
            )
            .values(
                status=status.value,
                last_error=last_error,
                locked_by=None,
                locked_until=None,
                updated_at=now,
            )
        )
