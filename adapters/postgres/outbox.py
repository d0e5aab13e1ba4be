"""The scheduling outbox: a job row per library item, written in the add's transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Text, bindparam, cast, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.postgres.tables import SCHEDULING_CHANNEL, scheduling_jobs
from domain.library import SchedulingStatus
from domain.values import LibraryItemId


class PostgresSchedulingOutbox:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def enqueue(self, item_id: LibraryItemId, at: datetime) -> None:
        # One round trip for the job and its wake-up call. NOTIFY is transactional: relays hear
        # it only if and when this transaction commits.
        await self._connection.execute(
            _ENQUEUE, {"item_id": item_id, "status": SchedulingStatus.PENDING.value, "at": at}
        )


# Built once, executed with parameters: the job row, and a NOTIFY only if it was inserted.
_JOB = (
    insert(scheduling_jobs)
    .values(
        library_item_id=bindparam("item_id"),
        status=bindparam("status"),
        attempts=0,
        run_after=bindparam("at"),
        created_at=bindparam("at"),
        updated_at=bindparam("at"),
    )
    .on_conflict_do_nothing(index_elements=["library_item_id"])
    .returning(scheduling_jobs.c.library_item_id)
    .cte("job")
)
_WAKE_UP = func.pg_notify(SCHEDULING_CHANNEL, cast(_JOB.c.library_item_id, Text))
_ENQUEUE = select(_WAKE_UP).select_from(_JOB)
