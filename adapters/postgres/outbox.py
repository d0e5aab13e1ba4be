"""The scheduling outbox: a job row per library item, written in the add's transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Text, cast, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.postgres.tables import SCHEDULING_CHANNEL, scheduling_jobs
from domain.library import SchedulingStatus
from domain.values import LibraryItemId


class PostgresSchedulingOutbox:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def enqueue(self, item_id: LibraryItemId, at: datetime) -> None:
        job = (
            insert(scheduling_jobs)
            .values(
                library_item_id=item_id,
                status=SchedulingStatus.PENDING.value,
                attempts=0,
                run_after=at,
                created_at=at,
                updated_at=at,
            )
            .on_conflict_do_nothing(index_elements=["library_item_id"])
            .returning(scheduling_jobs.c.library_item_id)
            .cte("job")
        )
        # One round trip for the job and its wake-up call. NOTIFY is transactional: relays hear
        # it only if and when this transaction commits.
        await self._connection.execute(
            select(
                func.pg_notify(SCHEDULING_CHANNEL, cast(job.c.library_item_id, Text))
            ).select_from(job)
        )
