"""The relay's unit of work: a claimed batch of scheduling jobs becomes ingestion requests
(ADR 0023)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from application.ports.catalog import (
    READING_FOR,
    AlbumPage,
    Catalog,
    CatalogItemNotFound,
    CatalogTrack,
    CatalogUnavailable,
    PlaylistPage,
)
from application.ports.clock import Clock
from application.ports.metrics import SchedulingMetrics
from application.ports.scheduling import ClaimedJob, ItemDescription, ItemTrackLink
from application.ports.track_index import IndexUnavailable, TrackIndex
from application.ports.unit_of_work import UnitOfWorkFactory
from application.use_cases.dispatch_pending import DispatchReport
from domain.ingestion import (
    CandidateTrack,
    IndexFiltered,
    IngestionRequest,
    chunked,
    dedupe,
    filter_indexed,
    retry_delay,
)
from domain.library import LibraryItem, LibraryItemKind
from domain.values import CatalogId, Isrc, LibraryItemId

# The most tracks written together (one write). Each track carries at most one ISRC, so this
# also bounds the ISRCs of a write: one `settled` query, one index call (the Qdrant adapter looks
# up 1,000 ids per retrieve), and ledger inserts far below PostgreSQL's 32,767 bind parameters.
SCHEDULING_BATCH_TRACKS = 1_000
JOB_RETRY_BASE = timedelta(seconds=2)
JOB_RETRY_CAP = timedelta(minutes=10)


class JobOutcome(StrEnum):
    DONE = "done"  # every track resolved, recorded and handed to dispatch
    GONE = "gone"  # the item was removed; nothing to do
    LOST_LEASE = "lost_lease"  # another worker owns the job now; stop without writing
    FAILED = "failed"  # permanent: the item is not in the catalogue
    RETRY = "retry"  # transient: the job runs again after a backoff


class ScheduleOutcomes(dict[LibraryItemId, JobOutcome]):
    """Every job's outcome, keyed by its item, and why, for the jobs that failed or will be
    retried (the reason stored on the job, shown as the item's lastError)."""

    def __init__(self) -> None:
        super().__init__()
        self.reasons: dict[LibraryItemId, str] = {}


@dataclass(frozen=True, slots=True)
class ScheduleIngestionCommand:
    jobs: tuple[ClaimedJob, ...]  # in claim order, which decides who records a shared ISRC
    worker: str
    lease: timedelta


@dataclass(frozen=True, slots=True)
class _Entry:
    """One track of an item, at its position in the item."""

    item: LibraryItem
    position: int
    track: CatalogTrack


@dataclass(slots=True)
class _Batch:
    """What the catalogue gave and is not written yet, and the jobs its write ends."""

    entries: list[_Entry] = field(default_factory=list)  # in claim order, then album order
    descriptions: list[ItemDescription] = field(default_factory=list)
    give_ups: dict[LibraryItemId, str] = field(default_factory=dict)  # item -> reason
    finishing: list[LibraryItemId] = field(default_factory=list)  # resolved in full
    # Tracks an item lists that the catalogue could not give: linked, never requested.
    unavailable: list[ItemTrackLink] = field(default_factory=list)

    def take(self, other: _Batch) -> None:
        self.entries += other.entries
        self.descriptions += other.descriptions
        self.give_ups |= other.give_ups
        self.finishing += other.finishing
        self.unavailable += other.unavailable

    def is_empty(self) -> bool:
        return not (
            self.entries or self.descriptions or self.give_ups or self.finishing or self.unavailable
        )

    def item_ids(self) -> list[LibraryItemId]:
        ids = [entry.item.id for entry in self.entries]
        ids += [description.item_id for description in self.descriptions]
        ids += [link.item_id for link in self.unavailable]
        return list(dict.fromkeys([*ids, *self.give_ups, *self.finishing]))

    def without(self, lost: set[LibraryItemId]) -> _Batch:
        return _Batch(
            entries=[entry for entry in self.entries if entry.item.id not in lost],
            descriptions=[d for d in self.descriptions if d.item_id not in lost],
            give_ups={i: reason for i, reason in self.give_ups.items() if i not in lost},
            finishing=[i for i in self.finishing if i not in lost],
            unavailable=[link for link in self.unavailable if link.item_id not in lost],
        )

    def links(self) -> list[ItemTrackLink]:
        return [
            ItemTrackLink(entry.item.id, entry.position, entry.track.catalog_id, entry.track.isrc)
            for entry in self.entries
        ] + self.unavailable

    def requests(self, seen: set[Isrc]) -> dict[Isrc, IngestionRequest]:
        """One request per ISRC no earlier track had (those of earlier writes are in `seen`,
        which is left as it is), the first track in claim and album order winning."""
        candidates = [CandidateTrack(e.track.catalog_id, e.track.isrc) for e in self.entries]
        first_entry: dict[CatalogId, _Entry] = {}
        for entry in self.entries:
            first_entry.setdefault(entry.track.catalog_id, entry)
        requests: dict[Isrc, IngestionRequest] = {}
        for candidate in dedupe(candidates, set(seen)).unique:
            entry = first_entry[candidate.track_id]
            assert candidate.isrc is not None  # dedupe keeps only tracks with an ISRC
            requests[candidate.isrc] = IngestionRequest(
                isrc=candidate.isrc,
                track_id=candidate.track_id,
                album_id=(
                    entry.item.catalog_id
                    if entry.item.kind is LibraryItemKind.ALBUM
                    else entry.track.album_id
                ),
                library_item_id=entry.item.id,
            )
        return requests


@dataclass(slots=True)
class _Run:
    """One call's progress across its writes."""

    command: ScheduleIngestionCommand
    outcomes: ScheduleOutcomes = field(default_factory=ScheduleOutcomes)
    seen: set[Isrc] = field(default_factory=set)  # the ISRCs of every earlier write
    pending: _Batch = field(default_factory=_Batch)
    writes: int = 0
    # Once the queue refuses, stop dispatching write by write: a failing send can take
    # seconds, and the relay's sweep retries the recorded rows with backoff anyway.
    dispatch_inline: bool = True

    def unsettled(self) -> list[ClaimedJob]:
        return [job for job in self.command.jobs if job.item_id not in self.outcomes]


class ScheduleIngestion:
    """The relay's unit of work for a claimed batch of jobs (ADR 0023): resolve the items'
    tracks from the catalogue, dedupe them by ISRC (the first in claim order, then album order,
    wins), drop ISRCs the ledger has settled, ask the index which are held (failing open), and
    in one transaction per write renew the leases, describe and link the items, record the
    requests and end the jobs resolved in full; then dispatch.

    An album or a playlist is one job with many pages; track items are many jobs with one
    catalogue lookup.
    Both go through the same write. The first catalogue answer is written alone, as soon as it
    arrives, so the first events leave after one catalogue response; what comes after it is
    written together once the catalogue has no more or SCHEDULING_BATCH_TRACKS tracks are
    waiting: one ledger query, one index call, one transaction and one dispatch per write. If a
    stream of pages fails part-way, the pages that did arrive are written first.

    Every job ends on its own. An item the catalogue does not know fails its job for good (the
    item shows FAILED with the reason); a removed item is skipped; a job whose lease another
    worker took is not written, and an ISRC it would have recorded goes to the next item still
    ours. Anything else (catalogue, index or storage down, or an unexpected error) retries every
    job not yet ended, each with its own backoff: a job is never dropped; unexpected errors are
    raised after that. Idempotent: running a job again records nothing twice, because the
    ledger is keyed by ISRC."""

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

    async def __call__(self, command: ScheduleIngestionCommand) -> ScheduleOutcomes:
        """Every job's outcome, keyed by its item, with the reasons of those that failed."""
        run = _Run(command)
        try:
            await self._schedule(run)
        except Exception as error:
            # Transient or unknown, it is the same to the jobs: none is dropped. The jobs
            # already ended (failed, gone, lost, or done) are not touched again.
            unsettled = run.unsettled()
            reason = describe(error)
            await self._retry_later(command, unsettled, reason=reason)
            for job in unsettled:
                run.outcomes[job.item_id] = JobOutcome.RETRY
                run.outcomes.reasons[job.item_id] = reason
                self._metrics.job_failed(permanent=False)
            if not isinstance(error, CatalogUnavailable | IndexUnavailable):
                raise
        return run.outcomes

    async def _schedule(self, run: _Run) -> None:
        ids = [job.item_id for job in run.command.jobs]
        async with self._uow_factory() as uow:
            found = await uow.jobs.items(ids)
        tracks: list[LibraryItem] = []
        paged: list[LibraryItem] = []
        for item_id in ids:
            item = found.get(item_id)
            if item is None:
                run.outcomes[item_id] = JobOutcome.GONE  # removed, and its job with it
            elif item.kind.is_paged:
                paged.append(item)
            else:
                tracks.append(item)
        for part in chunked(tracks, SCHEDULING_BATCH_TRACKS):
            await self._take(run, await self._resolve_tracks(part))
        for item in paged:
            await self._resolve_pages(run, item)
        await self._write(run)  # what is left, and the jobs it ends

    async def _resolve_tracks(self, items: Sequence[LibraryItem]) -> _Batch:
        """Track items: one catalogue lookup for all of them; each is resolved in full."""
        owners = {item.user_id for item in items}
        reading_for = READING_FOR.set(owners.pop() if len(owners) == 1 else None)
        try:
            found = await self._catalog.tracks([item.catalog_id for item in items])
        finally:
            READING_FOR.reset(reading_for)
        resolved = _Batch()
        for item in items:
            track = found.get(item.catalog_id)
            if track is None:
                error = CatalogItemNotFound("track", item.catalog_id.value)
                resolved.give_ups[item.id] = str(error)
                continue
            resolved.entries.append(_Entry(item, 0, track))
            resolved.descriptions.append(
                ItemDescription(item.id, title=track.title, artist_names=track.artist_names)
            )
            resolved.finishing.append(item.id)
        return resolved

    def _pages(self, item: LibraryItem) -> AsyncIterator[AlbumPage | PlaylistPage]:
        """The one place the kind of a paged item matters: which catalogue call reads it."""
        if item.kind is LibraryItemKind.PLAYLIST:
            return self._catalog.playlist_pages(item.catalog_id)
        return self._catalog.album_pages(item.catalog_id)

    async def _resolve_pages(self, run: _Run, item: LibraryItem) -> None:
        """An album or playlist item: its pages in order, each taken as it arrives, read for
        its owner (so a metered catalogue shares its slots fairly, ADR 0028)."""
        reading_for = READING_FOR.set(item.user_id)
        pages = self._pages(item)
        position = 0
        try:
            async for page in pages:
                await self._take(run, _item_page(item, page, position))
                position += len(page.tracks) + len(page.unavailable)
                if item.id in run.outcomes:  # ended by a write (done, or its lease lost)
                    return
            _finished_with_its_stream(run, item.id)
        except CatalogItemNotFound as error:
            run.pending.give_ups[item.id] = str(error)
        except Exception:
            # The pages that arrived before the failure are as good as ever: write them,
            # then let the failure take its course.
            await self._write(run)
            raise
        finally:
            # Closed here and now: left to the garbage collector, the stream (and whatever it
            # reads ahead) would outlive the job.
            await _close(pages)
            READING_FOR.reset(reading_for)

    async def _take(self, run: _Run, resolved: _Batch) -> None:
        """Add what the catalogue answered to the pending batch; write the first answer alone,
        and a batch once it is full (never past SCHEDULING_BATCH_TRACKS)."""
        waiting = len(run.pending.entries)
        if waiting and waiting + len(resolved.entries) > SCHEDULING_BATCH_TRACKS:
            await self._write(run)
        run.pending.take(resolved)
        if run.writes == 0 or len(run.pending.entries) >= SCHEDULING_BATCH_TRACKS:
            await self._write(run)

    async def _write(self, run: _Run) -> None:
        """Check, record, link, end and dispatch the pending batch, in one transaction. Jobs
        whose lease is no longer ours end as LOST_LEASE and nothing of theirs is written."""
        batch, run.pending = run.pending, _Batch()
        if batch.is_empty():
            return
        requests = batch.requests(run.seen)
        split = await self._split_unsettled(list(requests))
        command = run.command
        async with self._uow_factory() as uow:
            now = self._clock.now()
            touched = batch.item_ids()
            ours = await uow.jobs.extend_leases(
                touched, worker=command.worker, lease=command.lease, now=now
            )
            lost = {item_id for item_id in touched if item_id not in ours}
            if lost:
                # Lost to another worker, or removed since the read: not ours to write. An
                # ISRC whose first holder was lost goes to the next holder still ours.
                batch = batch.without(lost)
                requests = batch.requests(run.seen)
            if batch.give_ups:
                await uow.jobs.give_up(batch.give_ups, worker=command.worker, now=now)
            await uow.jobs.describe_items(batch.descriptions)
            await uow.ledger.link_tracks(batch.links())
            await uow.ledger.record_indexed(
                [requests[isrc] for isrc in split.already_indexed if isrc in requests], now=now
            )
            recorded = await uow.ledger.record_requests(
                [requests[isrc] for isrc in split.to_schedule if isrc in requests], now=now
            )
            await uow.jobs.finish(batch.finishing, worker=command.worker, now=now)
            await uow.commit()
        run.writes += 1
        run.seen.update(requests)
        self._settle(run, lost=lost, failed=batch.give_ups, done=batch.finishing)
        if recorded and run.dispatch_inline:
            report = await self._dispatch()
            run.dispatch_inline = not report.queue_unavailable

    def _settle(
        self,
        run: _Run,
        *,
        lost: Iterable[LibraryItemId],
        failed: Mapping[LibraryItemId, str],
        done: Iterable[LibraryItemId],
    ) -> None:
        for item_id in lost:
            run.outcomes[item_id] = JobOutcome.LOST_LEASE
        for item_id, reason in failed.items():
            run.outcomes[item_id] = JobOutcome.FAILED
            run.outcomes.reasons[item_id] = reason
            self._metrics.job_failed(permanent=True)
        finished = self._clock.now()
        enqueued = {job.item_id: job.enqueued_at for job in run.command.jobs}
        for item_id in done:
            run.outcomes[item_id] = JobOutcome.DONE
            self._metrics.job_finished(
                seconds_since_enqueued=(finished - enqueued[item_id]).total_seconds()
            )

    async def _split_unsettled(self, isrcs: Sequence[Isrc]) -> IndexFiltered:
        """Of distinct `isrcs`, those to request and those the index turned out to hold
        already; the ones the ledger has settled are in neither. One ledger query and at most
        one index call, which fails open: a duplicate ingestion is cheaper than a lost one."""
        if not isrcs:
            return IndexFiltered((), ())
        async with self._uow_factory() as uow:
            settled = await uow.ledger.settled(isrcs, now=self._clock.now())
        fresh = [isrc for isrc in isrcs if isrc not in settled]
        if not fresh:
            return IndexFiltered((), ())
        try:
            indexed: set[Isrc] | None = await self._index.indexed(fresh)
        except IndexUnavailable:
            indexed = None
            self._metrics.index_failed_open()
        return filter_indexed(fresh, indexed)

    async def _retry_later(
        self, command: ScheduleIngestionCommand, jobs: Sequence[ClaimedJob], *, reason: str
    ) -> None:
        if not jobs:
            return
        now = self._clock.now()
        async with self._uow_factory() as uow:
            await uow.jobs.retry_later(
                {job.item_id: retry_at(job, now) for job in jobs},
                worker=command.worker,
                reason=reason,
                now=now,
            )
            await uow.commit()


def _item_page(item: LibraryItem, page: AlbumPage | PlaylistPage, position: int) -> _Batch:
    """One page of an album or playlist item; the first names the item, the last resolves it
    in full."""
    resolved = _Batch(
        entries=[_Entry(item, position + n, track) for n, track in enumerate(page.tracks)]
    )
    # After the page's tracks: their own positions are not known, only that they were listed.
    after = position + len(page.tracks)
    resolved.unavailable = [
        ItemTrackLink(item.id, after + n, track_id, None, available=False)
        for n, track_id in enumerate(page.unavailable)
    ]
    if position == 0:
        if isinstance(page, AlbumPage):
            title, artists = page.album.title, page.album.artist_names
        else:
            title, artists = page.playlist.title, ()
        resolved.descriptions.append(ItemDescription(item.id, title=title, artist_names=artists))
    if page.is_last:
        resolved.finishing.append(item.id)
    return resolved


def _finished_with_its_stream(run: _Run, item_id: LibraryItemId) -> None:
    """A paged item whose stream ended is resolved in full, even if no page said it was the
    last; the next write ends its job, unless one already did."""
    if item_id not in run.outcomes and item_id not in run.pending.finishing:
        run.pending.finishing.append(item_id)


async def _close(pages: AsyncIterator[AlbumPage | PlaylistPage]) -> None:
    close = getattr(pages, "aclose", None)
    if close is not None:
        await close()


def retry_at(job: ClaimedJob, now: datetime) -> datetime:
    """When a job that failed for a transient reason runs again: exponential in its attempts."""
    return now + retry_delay(job.attempts, base=JOB_RETRY_BASE, cap=JOB_RETRY_CAP)


def describe(error: BaseException) -> str:
    """An error as the reason stored on the job (and shown as the item's lastError)."""
    text = str(error) or type(error).__name__
    return text[:500]
