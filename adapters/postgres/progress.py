"""Ingestion progress per library item: its job, and its tracks joined to the ISRC ledger; for
an album still waiting for the relay, the tracks the catalogue cache lists for it."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, TEXT, UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.postgres.library import row_to_item
from application.ports.progress_changes import ProgressChange
from domain.library import (
    IngestionProgress,
    LibraryItem,
    SchedulingStatus,
    SkippedTrack,
    SkipReason,
)
from domain.values import CatalogId, LibraryItemId, UserId

# One statement for a whole page of items (the GraphQL DataLoader batches them). Its shape makes
# the plan plain whatever the planner knows of the tables: the tracks are counted per item, in a
# LATERAL subquery that can only be an index scan of the item's links, and each link's ledger
# row is a LATERAL lookup by its key (LIMIT 1 keeps it from being merged into a join the planner
# might choose to hash). As a plain join, the plan depended on statistics: with none (a server
# without autovacuum, a table just loaded), PostgreSQL guessed 1 in 200 links per item and hashed
# every link of every user: a page of the library took 1.2 s at 10^6 items (ADR 0033, bench/).
_PROGRESS = text(
    """
    SELECT job.library_item_id, job.status, job.last_error, tracks.total, tracks.requested,
           tracks.indexed, tracks.skipped, tracks.failed, tracks.skipped_ids,
           tracks.skipped_unavailable
    FROM scheduling_jobs AS job
    CROSS JOIN LATERAL (
        SELECT count(*) AS total,
               count(*) FILTER (WHERE ledger.state IN ('requested', 'dispatched')) AS requested,
               count(*) FILTER (WHERE ledger.state = 'indexed') AS indexed,
               count(*) FILTER (WHERE link.isrc IS NULL) AS skipped,
               count(*) FILTER (WHERE ledger.state = 'failed') AS failed,
               coalesce(array_agg(link.track_id ORDER BY link.position)
                   FILTER (WHERE link.isrc IS NULL), '{}') AS skipped_ids,
               coalesce(array_agg(link.unavailable ORDER BY link.position)
                   FILTER (WHERE link.isrc IS NULL), '{}') AS skipped_unavailable
        FROM item_tracks AS link
        LEFT JOIN LATERAL (
            SELECT state FROM isrc_ledger WHERE isrc_ledger.isrc = link.isrc LIMIT 1
        ) AS ledger ON true
        WHERE link.library_item_id = job.library_item_id
    ) AS tracks
    WHERE job.library_item_id = ANY(:item_ids)
    """
).bindparams(bindparam("item_ids", type_=ARRAY(UUID(as_uuid=True))))


# An album whose job is pending and which has no tracks linked yet (the relay has not reached
# it) is counted from the catalogue cache when the cache holds the whole album: its tracks as
# the album lists them, joined to the ledger as linked tracks are above, so a user sees what
# the add will come to (and what other users' adds already indexed) before the relay runs.
# Each listed track and its ledger row are keyed LATERAL lookups, as above: a plain join let a
# plan without statistics hash the whole cache and ledger (2,000,000 rows each, bench/).
_PROGRESS_FROM_CACHE = text(
    """
    SELECT item.id,
           count(listed.track_id) AS total,
           count(*) FILTER (WHERE ledger.state IN ('requested', 'dispatched')) AS requested,
           count(*) FILTER (WHERE ledger.state = 'indexed') AS indexed,
           count(*) FILTER (WHERE track.track_id IS NOT NULL AND track.isrc IS NULL) AS skipped,
           count(*) FILTER (WHERE ledger.state = 'failed') AS failed
    FROM library_items AS item
    JOIN catalog_albums AS album ON album.album_id = item.catalog_id AND album.complete
    CROSS JOIN LATERAL unnest(album.track_ids) AS listed(track_id)
    LEFT JOIN LATERAL (
        SELECT track_id, isrc FROM catalog_tracks
        WHERE catalog_tracks.track_id = listed.track_id LIMIT 1
    ) AS track ON true
    LEFT JOIN LATERAL (
        SELECT state FROM isrc_ledger WHERE isrc_ledger.isrc = track.isrc LIMIT 1
    ) AS ledger ON true
    WHERE item.id = ANY(:item_ids) AND item.kind = 'album'
    GROUP BY item.id
    """
).bindparams(bindparam("item_ids", type_=ARRAY(UUID(as_uuid=True))))


# The watched items a change may have moved. The ISRCs' items come from the partial index on
# item_tracks (isrc); only watched items are read, so the cost follows the watchers, not the
# writers.
_TOUCHED = text(
    """
    SELECT item.* FROM library_items AS item
    WHERE (item.user_id = ANY(:owners) OR item.id = ANY(:watched))
      AND (CAST(:everything AS boolean)
           OR item.id = ANY(:changed)
           OR item.id IN (SELECT library_item_id FROM item_tracks WHERE isrc = ANY(:isrcs)))
    """
).bindparams(
    bindparam("owners", type_=ARRAY(TEXT)),
    bindparam("watched", type_=ARRAY(UUID(as_uuid=True))),
    bindparam("changed", type_=ARRAY(UUID(as_uuid=True))),
    bindparam("isrcs", type_=ARRAY(TEXT)),
)


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
        for row in rows:
            (item_id, status, last_error, total, requested, indexed, skipped, failed) = row[:8]
            skipped_tracks = tuple(
                SkippedTrack(
                    CatalogId(track_id),
                    SkipReason.NOT_AVAILABLE if unavailable else SkipReason.NO_ISRC,
                )
                for track_id, unavailable in zip(row[8], row[9], strict=True)
            )
            progress[LibraryItemId(item_id)] = IngestionProgress(
                scheduling=SchedulingStatus(status),
                tracks_total=total,
                tracks_requested=requested,
                tracks_indexed=indexed,
                tracks_skipped=skipped,
                tracks_failed=failed,
                last_error=last_error,
                skipped_tracks=skipped_tracks,
            )
        waiting = [
            item_id
            for item_id, known in progress.items()
            if known.scheduling is SchedulingStatus.PENDING and known.tracks_total == 0
        ]
        if waiting:
            cached = await self._connection.execute(_PROGRESS_FROM_CACHE, {"item_ids": waiting})
            for item_id, total, requested, indexed, skipped, failed in cached:
                progress[LibraryItemId(item_id)] = replace(
                    progress[LibraryItemId(item_id)],
                    tracks_total=total,
                    tracks_requested=requested,
                    tracks_indexed=indexed,
                    tracks_skipped=skipped,
                    tracks_failed=failed,
                )
        return progress

    async def touched_items(
        self,
        change: ProgressChange,
        *,
        owners: Collection[UserId],
        item_ids: Collection[LibraryItemId],
    ) -> list[LibraryItem]:
        if not owners and not item_ids:
            return []
        rows = await self._connection.execute(
            _TOUCHED,
            {
                "owners": list(owners),
                "watched": list(item_ids),
                "everything": change.everything,
                "changed": list(change.item_ids),
                "isrcs": [isrc.value for isrc in change.isrcs],
            },
        )
        return [row_to_item(row) for row in rows.mappings()]
