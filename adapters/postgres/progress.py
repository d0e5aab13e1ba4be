"""Ingestion progress per library item, read from the scheduling job."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.postgres.tables import scheduling_jobs
from domain.library import IngestionProgress, SchedulingStatus
from domain.values import LibraryItemId


class PostgresProgressReader:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def for_items(
        self, item_ids: Sequence[LibraryItemId]
    ) -> dict[LibraryItemId, IngestionProgress]:
        progress = {item_id: IngestionProgress() for item_id in item_ids}
        if not item_ids:
            return progress
        rows = await self._connection.execute(
            select(
                scheduling_jobs.c.library_item_id,
                scheduling_jobs.c.status,
                scheduling_jobs.c.last_error,
            ).where(scheduling_jobs.c.library_item_id.in_(list(item_ids)))
        )
        for item_id, status, last_error in rows:
            progress[LibraryItemId(item_id)] = IngestionProgress(
                scheduling=SchedulingStatus(status), last_error=last_error
            )
        return progress
