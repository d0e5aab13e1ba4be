"""What the two scheduling use cases share: an album job (ScheduleIngestion) and a batch of track
jobs (ScheduleTrackBatch) turn catalogue tracks into ingestion requests the same way, check them
against the ledger and the index the same way, and end a job with the same outcomes and backoff.
Kept in one place so that the two paths cannot drift apart."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from application.ports.catalog import CatalogTrack
from application.ports.clock import Clock
from application.ports.metrics import SchedulingMetrics
from application.ports.scheduling import ClaimedJob
from application.ports.track_index import IndexUnavailable, TrackIndex
from application.ports.unit_of_work import UnitOfWorkFactory
from domain.ingestion import (
    CandidateTrack,
    IndexFiltered,
    IngestionRequest,
    dedupe,
    filter_indexed,
    retry_delay,
)
from domain.library import LibraryItem, LibraryItemKind
from domain.values import Isrc

JOB_RETRY_BASE = timedelta(seconds=2)
JOB_RETRY_CAP = timedelta(minutes=10)


class JobOutcome(StrEnum):
    DONE = "done"  # every track resolved, recorded and handed to dispatch
    GONE = "gone"  # the item was removed; nothing to do
    LOST_LEASE = "lost_lease"  # another worker owns the job now; stop without writing
    FAILED = "failed"  # permanent: the item is not in the catalogue
    RETRY = "retry"  # transient: the job runs again after a backoff


def new_requests(
    item: LibraryItem, tracks: Sequence[CatalogTrack], seen: set[Isrc]
) -> dict[Isrc, IngestionRequest]:
    """The tracks whose ISRC no earlier track had (earlier pages of the item, or earlier items
    of a batch: whatever `seen` holds), as requests in order; `seen` takes their ISRCs."""
    candidates = [CandidateTrack(track.catalog_id, track.isrc) for track in tracks]
    album_ids = {track.catalog_id: track.album_id for track in tracks}
    return {
        candidate.isrc: IngestionRequest(
            isrc=candidate.isrc,
            track_id=candidate.track_id,
            album_id=(
                item.catalog_id
                if item.kind is LibraryItemKind.ALBUM
                else album_ids.get(candidate.track_id)
            ),
            library_item_id=item.id,
        )
        for candidate in dedupe(candidates, seen).unique
        if candidate.isrc is not None
    }


async def split_unsettled(
    isrcs: Sequence[Isrc],
    *,
    uow_factory: UnitOfWorkFactory,
    index: TrackIndex,
    clock: Clock,
    metrics: SchedulingMetrics,
) -> IndexFiltered:
    """Of distinct `isrcs`, those to request and those the index turned out to hold already;
    the ones the ledger has settled are in neither. One ledger query and at most one index
    call, which fails open: a duplicate ingestion is cheaper than a lost one."""
    if not isrcs:
        return IndexFiltered((), ())
    async with uow_factory() as uow:
        settled = await uow.ledger.settled(isrcs, now=clock.now())
    fresh = [isrc for isrc in isrcs if isrc not in settled]
    if not fresh:
        return IndexFiltered((), ())
    try:
        indexed: set[Isrc] | None = await index.indexed(fresh)
    except IndexUnavailable:
        indexed = None
        metrics.index_failed_open()
    return filter_indexed(fresh, indexed)


def retry_at(job: ClaimedJob, now: datetime) -> datetime:
    """When a job that failed for a transient reason runs again: exponential in its attempts."""
    return now + retry_delay(job.attempts, base=JOB_RETRY_BASE, cap=JOB_RETRY_CAP)


def describe(error: BaseException) -> str:
    """An error as the reason stored on the job (and shown as the item's lastError)."""
    text = str(error) or type(error).__name__
    return text[:500]
