from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

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
from application.use_cases.schedule_common import (
    JobOutcome,
    describe,
    new_requests,
    retry_at,
    split_unsettled,
)
from domain.ingestion import IngestionRequest
from domain.library import LibraryItem, LibraryItemKind
from domain.values import Isrc

# JobOutcome is defined with the parts both scheduling use cases share, and named here too, where
# callers of ScheduleIngestion have always found it.
__all__ = [
    "PREFETCH_PAGES",
    "SCHEDULING_BATCH_TRACKS",
    "JobOutcome",
    "ScheduleIngestion",
    "ScheduleIngestionCommand",
]

# The most tracks handled together after the first page (ADR 0015). Each track carries at most
# one ISRC, so this also bounds the ISRCs of a batch: one `settled` query, one index call (the
# Qdrant adapter looks up 1,000 ids per retrieve), and ledger inserts far below PostgreSQL's
# 32,767 bind parameters.
SCHEDULING_BATCH_TRACKS = 1_000
# Pages fetched ahead of the handling. The handling of a batched page is only a dedupe, so the
# buffer fills only while a batch is written and dispatched; bounded, so that a job that stops
# (lost lease, failure) has not asked the catalogue for much it will not use.
PREFETCH_PAGES = 4


@dataclass(frozen=True, slots=True)
class ScheduleIngestionCommand:
    job: ClaimedJob
    worker: str
    lease: timedelta


@dataclass(slots=True)
class _Batch:
    """Pages taken from the catalogue and deduped, not yet checked nor written."""

    pages: list[AlbumPage] = field(default_factory=list)
    links: list[ItemTrackLink] = field(default_factory=list)
    requests: dict[Isrc, IngestionRequest] = field(default_factory=dict)  # in album order


@dataclass(slots=True)
class _Progress:
    """What a job has done so far, across its batches."""

    written: int = 0  # batches written; the first one holds the first page alone
    # Once the queue refuses, stop dispatching batch by batch: a failing send can take
    # seconds, and the relay's sweep retries the recorded rows with backoff anyway.
    dispatch_inline: bool = True


# What the page fetcher hands over: a page, the exception that ended the stream, or None at its
# end.
_Fetched = AlbumPage | Exception | None


class ScheduleIngestion:
    """The relay's unit of work for one album (the relay batches track items through
    ScheduleTrackBatch, ADR 0017; a track item given here is an album of one): stream its
    tracks from the catalogue, dedupe them by ISRC (first in album order wins), drop ISRCs the
    ledger has settled, ask the index which are held (failing open), record the rest as
    requests and link every track to the item, in one transaction per batch; then dispatch.

    A background task fetches the catalogue's pages ahead, so the next page is on its way while
    the current one is handled. The first page is handled alone, as soon as it arrives, so the
    first events leave after one catalogue response; the pages after it are handled together,
    in batches of up to SCHEDULING_BATCH_TRACKS tracks, once the catalogue has no more or a
    batch is full: one ledger query, one index call, one transaction and one dispatch per
    batch instead of per page (ADR 0015). If the stream fails part-way, the pages that did
    arrive are handled before the failure takes its course.

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
            await self._retry_later(command, reason=describe(error))
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
        fetched: asyncio.Queue[_Fetched] = asyncio.Queue(maxsize=PREFETCH_PAGES)
        fetcher = asyncio.create_task(self._fetch(item, fetched), name=f"pages-{item.id}")
        try:
            outcome = await self._handle(command, item, fetched)
        finally:
            # However the job ends (done, lost lease, failure, cancelled), the fetcher ends
            # with it. Waiting, not just cancelling, is what keeps it from outliving the job;
            # asyncio.wait neither raises the fetcher's outcome nor cancels it a second time.
            fetcher.cancel()
            await asyncio.wait({fetcher})
        if outcome is not JobOutcome.DONE:
            return outcome
        async with self._uow_factory() as uow:
            await uow.jobs.finish(item.id, worker=command.worker, now=self._clock.now())
            await uow.commit()
        return JobOutcome.DONE

    async def _fetch(self, item: LibraryItem, fetched: asyncio.Queue[_Fetched]) -> None:
        """Move the item's pages into `fetched`, then None; or the exception that stopped the
        stream, which the job raises in its own task once it has taken the pages before it."""
        pages = self._pages(item)
        try:
            async for page in pages:
                await fetched.put(page)
        except Exception as error:  # every failure is the job's to judge, in order
            await fetched.put(error)
            return
        finally:
            # Closed here, in this task: left to the garbage collector, an abandoned stream
            # would be closed by a task of the event loop's own, after the job ended.
            await pages.aclose()
        await fetched.put(None)

    async def _pages(self, item: LibraryItem) -> AsyncGenerator[AlbumPage, None]:
        if item.kind is LibraryItemKind.ALBUM:
            pages = self._catalog.album_pages(item.catalog_id)
            try:
                async for page in pages:
                    yield page
            finally:
                if isinstance(pages, AsyncGenerator):
                    await pages.aclose()
            return
        track = await self._catalog.track(item.catalog_id)
        # A track item is an album of one, headed by the track itself.
        header = CatalogAlbum(
            catalog_id=item.catalog_id, title=track.title, artist_names=track.artist_names
        )
        yield AlbumPage(album=header, tracks=(track,), is_last=True)

    async def _handle(
        self,
        command: ScheduleIngestionCommand,
        item: LibraryItem,
        fetched: asyncio.Queue[_Fetched],
    ) -> JobOutcome:
        """Take the pages in album order: write the first alone, the rest in batches."""
        seen: set[Isrc] = set()  # the ISRCs of every earlier page, so dedupe spans the album
        position = 0
        batch = _Batch()
        progress = _Progress()
        while True:
            got = await fetched.get()
            if isinstance(got, Exception):
                # The pages that arrived before the failure are as good as ever: write them,
                # as page-by-page handling did, then let the failure take its course.
                if batch.pages and not await self._write(command, item, batch, progress):
                    return JobOutcome.LOST_LEASE
                raise got
            if got is None:
                break
            page = got
            links = [
                ItemTrackLink(position + offset, track.catalog_id, track.isrc)
                for offset, track in enumerate(page.tracks)
            ]
            position += len(page.tracks)
            requests = new_requests(item, page.tracks, seen)
            if batch.pages and len(batch.links) + len(links) > SCHEDULING_BATCH_TRACKS:
                # Full before this page: write it as it is, so no batch outgrows the bound.
                if not await self._write(command, item, batch, progress):
                    return JobOutcome.LOST_LEASE
                batch = _Batch()
            batch.pages.append(page)
            batch.links += links
            batch.requests |= requests
            if progress.written == 0 or len(batch.links) >= SCHEDULING_BATCH_TRACKS:
                if not await self._write(command, item, batch, progress):
                    return JobOutcome.LOST_LEASE
                batch = _Batch()
        if batch.pages and not await self._write(command, item, batch, progress):
            return JobOutcome.LOST_LEASE
        return JobOutcome.DONE

    async def _write(
        self,
        command: ScheduleIngestionCommand,
        item: LibraryItem,
        batch: _Batch,
        progress: _Progress,
    ) -> bool:
        """Check, record, link and dispatch one batch; False when the lease is lost, in which
        case nothing of the batch is written."""
        requests, already_indexed = await self._checked(list(batch.requests.values()))
        async with self._uow_factory() as uow:
            now = self._clock.now()
            if not await uow.jobs.extend_lease(
                item.id, worker=command.worker, lease=command.lease, now=now
            ):
                return False
            if progress.written == 0:
                album = batch.pages[0].album
                await uow.jobs.describe_item(
                    item.id, title=album.title, artist_names=album.artist_names
                )
            await uow.ledger.link_tracks(item.id, batch.links)
            await uow.ledger.record_indexed(already_indexed, now=now)
            recorded = await uow.ledger.record_requests(requests, now=now)
            await uow.commit()
        progress.written += 1
        if recorded and progress.dispatch_inline:
            report = await self._dispatch()
            progress.dispatch_inline = not report.queue_unavailable
        return True

    async def _checked(
        self, candidates: list[IngestionRequest]
    ) -> tuple[list[IngestionRequest], list[IngestionRequest]]:
        """Of the batch's candidates, those to request, and those the index turned out to hold
        already; the ones the ledger has settled are in neither."""
        requests = {request.isrc: request for request in candidates}
        split = await split_unsettled(
            list(requests),
            uow_factory=self._uow_factory,
            index=self._index,
            clock=self._clock,
            metrics=self._metrics,
        )
        return (
            [requests[isrc] for isrc in split.to_schedule],
            [requests[isrc] for isrc in split.already_indexed],
        )

    async def _retry_later(self, command: ScheduleIngestionCommand, *, reason: str) -> None:
        now = self._clock.now()
        async with self._uow_factory() as uow:
            await uow.jobs.retry_later(
                command.job.item_id,
                worker=command.worker,
                reason=reason,
                run_after=retry_at(command.job, now),
                now=now,
            )
            await uow.commit()
