"""Ingestion progress per library item: its job, and its tracks joined to the ISRC ledger."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.library import IngestionProgress, SchedulingStatus
from domain.values import LibraryItemId

# One statement for a whole page of items (the GraphQL DataLoader batches them).
_PROGRESS = text(
    """
    SELECT job.library_item_id, job.status, job.last_error,
           count(link.position) AS total,
           count(*) FILTER (WHERE ledger.state IN ('requested', 'dispatched')) AS requested,
           count(*) FILTER (WHERE ledger.state = 'indexed') AS indexed,
           count(*) FILTER (WHERE link.position IS NOT NULL AND link.isrc IS NULL) AS skipped,
           count(*) FILTER (WHERE ledger.state = 'failed') AS failed
    FROM scheduling_jobs AS job
    LEFT JOIN item_tracks AS link ON link.library_item_id = job.library_item_id
    LEFT JOIN isrc_ledger AS ledger ON ledger.isrc = link.isrc
    WHERE job.library_item_id = ANY(:item_ids)
    GROUP BY job.library_item_id, job.status, job.last_error
    """
).bindparams(bindparam("item_ids", type_=ARRAY(UUID(as_uuid=True))))


class PostgresProgressReader:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def for_items(
        self, item_ids: Sequence[LibraryItemId]
    ) -> dict[LibraryItemId, IngestionProgress]:
        progress = {item_id: IngestionProgress() for item_id in item_ids}
        if not item_ids:
            return progress
        rows = await self._connection.execute(_PROGRESS, {"item_ids": list(item_ids)})
        for item_id, status, last_error, total, requested, indexed, skipped, failed in rows:
            progress[LibraryItemId(item_id)] = IngestionProgress(
                scheduling=SchedulingStatus(status),
                tracks_total=total,
                tracks_requested=requested,
                tracks_indexed=indexed,
                tracks_skipped=skipped,
                tracks_failed=failed,
                last_error=last_error,
            )
        return progress
