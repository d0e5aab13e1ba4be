from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from application.ports.catalog import (
    AlbumPage,
    Catalog,
    CatalogAlbum,
    CatalogItemNotFound,
    CatalogUnavailable,
)
from application.ports.clock import Clock
from application.ports.metrics import SchedulingMetrics
from application.ports.scheduling import ClaimedJob, ItemTrackLink
from application.ports.track_index import IndexUnavailable, TrackIndex
from application.ports.unit_of_work import UnitOfWorkFactory
from application.use_cases.dispatch_pending import DispatchReport
from domain.ingestion import (
    CandidateTrack,
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


@dataclass(frozen=True, slots=True)
class ScheduleIngestionCommand:
    job: ClaimedJob
    worker: str
    lease: timedelta


class ScheduleIngestion:
    """The relay's unit of work for one library item: stream its tracks from the catalogue and,
    page by page as each arrives, dedupe by ISRC (first in album order wins), drop ISRCs the
    ledger has settled, ask the index which are held (failing open), record the rest as requests
    and link every track to the item, all in one transaction per page; then dispatch at once,
    so the first events leave after the first page.

    A catalogue that does not know the item fails the job for good (the item shows FAILED with
    the reason); any other failure retries the job with backoff. Idempotent: running a job
    again records nothing twice, because the ledger is keyed by ISRC."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        catalog: Catalog,
        index: TrackIndex,
        dispatch: Callable[[], Awaitable[DispatchReport]],
        clock: Clock,
        metrics: SchedulingMetrics,
    ) -> None:
        self._uow_factory = uow_factory
        self._catalog = catalog
        self._index = index
        self._dispatch = dispatch
        self._clock = clock
        self._metrics = metrics

    async def __call__(self, command: ScheduleIngestionCommand) -> JobOutcome:
        job = command.job
        try:
            outcome = await self._schedule(command)
        except CatalogItemNotFound as error:
            async with self._uow_factory() as uow:
                await uow.jobs.give_up(
                    job.item_id, worker=command.worker, reason=str(error), now=self._clock.now()
                )
                await uow.commit()
            self._metrics.job_failed(permanent=True)
            return JobOutcome.FAILED
        except (CatalogUnavailable, IndexUnavailable, Exception) as error:
            # Anything else is treated as transient: a job is never dropped.
            await self._retry_later(command, reason=_describe(error))
            self._metrics.job_failed(permanent=False)
            if not isinstance(error, CatalogUnavailable | IndexUnavailable):
                raise
            return JobOutcome.RETRY
        if outcome is JobOutcome.DONE:
            finished = self._clock.now()
            self._metrics.job_finished(
                seconds_since_enqueued=(finished - job.enqueued_at).total_seconds()
            )
        return outcome

    async def _schedule(self, command: ScheduleIngestionCommand) -> JobOutcome:
        job = command.job
        async with self._uow_factory() as uow:
            item = await uow.jobs.item(job.item_id)
        if item is None:
            return JobOutcome.GONE
        seen: set[Isrc] = set()
        position = 0
        described = False
        # Once the queue refuses, stop dispatching page by page: a failing send can take
        # seconds, and the relay's sweep retries the recorded rows with backoff anyway.
        dispatch_inline = True
        async for page in self._pages(item):
            links = [
                ItemTrackLink(position + offset, track.catalog_id, track.isrc)
                for offset, track in enumerate(page.tracks)
            ]
            position += len(page.tracks)
            requests, already_indexed = await self._requests_for(item, page, seen)
            async with self._uow_factory() as uow:
                now = self._clock.now()
                if not await uow.jobs.extend_lease(
                    item.id, worker=command.worker, lease=command.lease, now=now
                ):
                    return JobOutcome.LOST_LEASE
                if not described:
                    await uow.jobs.describe_item(
                        item.id, title=page.album.title, artist_names=page.album.artist_names
                    )
                    described = True
                await uow.ledger.link_tracks(item.id, links)
                await uow.ledger.record_indexed(already_indexed, now=now)
                recorded = await uow.ledger.record_requests(requests, now=now)
                await uow.commit()
            if recorded and dispatch_inline:
                report = await self._dispatch()
                dispatch_inline = not report.queue_unavailable
        async with self._uow_factory() as uow:
            await uow.jobs.finish(item.id, worker=command.worker, now=self._clock.now())
            await uow.commit()
        return JobOutcome.DONE

    async def _requests_for(
        self, item: LibraryItem, page: AlbumPage, seen: set[Isrc]
    ) -> tuple[list[IngestionRequest], list[IngestionRequest]]:
        """The page's new requests, and the tracks the index turned out to hold already."""
        candidates = [CandidateTrack(track.catalog_id, track.isrc) for track in page.tracks]
        unique = dedupe(candidates, seen).unique
        album_ids = {track.catalog_id: track.album_id for track in page.tracks}
        requests = {
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
            for candidate in unique
            if candidate.isrc is not None
        }
        if not requests:
            return [], []
        async with self._uow_factory() as uow:
            settled = await uow.ledger.settled(list(requests), now=self._clock.now())
        fresh = [isrc for isrc in requests if isrc not in settled]
        if not fresh:
            return [], []
        try:
            indexed: set[Isrc] | None = await self._index.indexed(fresh)
        except IndexUnavailable:
            indexed = None  # fail open: a duplicate ingestion is cheaper than a lost one
            self._metrics.index_failed_open()
        split = filter_indexed(fresh, indexed)
        return (
            [requests[isrc] for isrc in split.to_schedule],
            [requests[isrc] for isrc in split.already_indexed],
        )

    async def _pages(self, item: LibraryItem) -> AsyncIterator[AlbumPage]:
        if item.kind is LibraryItemKind.ALBUM:
            async for page in self._catalog.album_pages(item.catalog_id):
                yield page
            return
        track = await self._catalog.track(item.catalog_id)
        # A track item is an album of one, headed by the track itself.
        header = CatalogAlbum(
            catalog_id=item.catalog_id, title=track.title, artist_names=track.artist_names
        )
        yield AlbumPage(album=header, tracks=(track,), is_last=True)

    async def _retry_later(self, command: ScheduleIngestionCommand, *, reason: str) -> None:
        now = self._clock.now()
        delay = retry_delay(command.job.attempts, base=JOB_RETRY_BASE, cap=JOB_RETRY_CAP)
        async with self._uow_factory() as uow:
            await uow.jobs.retry_later(
                command.job.item_id,
                worker=command.worker,
                reason=reason,
                run_after=now + delay,
                now=now,
            )
            await uow.commit()


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text[:500]
