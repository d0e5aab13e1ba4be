from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from application.ports.catalog import (
    Catalog,
    CatalogItemNotFound,
    CatalogTrack,
    CatalogUnavailable,
)
from application.ports.clock import Clock
from application.ports.metrics import SchedulingMetrics
from application.ports.scheduling import ClaimedJob, ItemDescription, ItemTrackLink
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
from domain.values import CatalogId, Isrc, LibraryItemId


@dataclass(frozen=True, slots=True)
class ScheduleTrackBatchCommand:
    jobs: tuple[ClaimedJob, ...]  # in claim order, which decides who records a shared ISRC
    worker: str
    lease: timedelta


class ScheduleTrackBatch:
    """The relay's unit of work for many jobs whose items are single tracks (ADR 0017).

    What ScheduleIngestion does for one item, done once for the whole batch: one read of the
    items, one catalogue lookup of all their tracks, one ledger query, one index call (failing
    open), one transaction that renews every lease, describes and links every item and records
    the requests, one dispatch, and one transaction that marks the jobs done. The per-job costs
    (connection checkouts, statements, commits, an index call and an Inngest request each)
    were most of the relay's CPU under a load of single-track adds.

    Each job still ends on its own: a track the catalogue does not know fails only its job; an
    item removed meanwhile is skipped; a job whose lease another worker took is not written.
    Anything transient (catalogue or storage down, or any unexpected error) retries every job
    of the batch not yet ended, each with its own backoff: a job is never dropped. Dedupe spans
    the batch, so an ISRC shared by two items is requested once, by the first in claim order,
    and both items are linked to their track. Idempotent: the ledger is keyed by ISRC."""

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

    async def __call__(self, command: ScheduleTrackBatchCommand) -> dict[LibraryItemId, JobOutcome]:
        """Every job's outcome, keyed by its item."""
        # Outcomes settled so far; whatever is missing when a failure strikes is retried.
        outcomes: dict[LibraryItemId, JobOutcome] = {}
        try:
            await self._schedule(command, outcomes)
        except Exception as error:
            # Transient or unknown, it is the same to the jobs: none is dropped. The jobs
            # already ended (failed, gone, lost, or done) are not touched again.
            unsettled = [job for job in command.jobs if job.item_id not in outcomes]
            await self._retry_later(command, unsettled, reason=describe(error))
            for job in unsettled:
                outcomes[job.item_id] = JobOutcome.RETRY
                self._metrics.job_failed(permanent=False)
            if not isinstance(error, CatalogUnavailable | IndexUnavailable):
                raise
        return outcomes

    async def _schedule(
        self, command: ScheduleTrackBatchCommand, outcomes: dict[LibraryItemId, JobOutcome]
    ) -> None:
        ids = [job.item_id for job in command.jobs]
        async with self._uow_factory() as uow:
            found_items = await uow.jobs.items(ids)
        items: list[LibraryItem] = []
        for item_id in ids:
            item = found_items.get(item_id)
            if item is None:
                outcomes[item_id] = JobOutcome.GONE  # removed, and its job with it
            elif item.kind is not LibraryItemKind.TRACK:
                # The relay claims track jobs only for batches; an album here is a bug.
                raise ValueError(f"library item {item_id} is an album, not a track")
            else:
                items.append(item)
        if not items:
            return
        tracks = await self._catalog.tracks([item.catalog_id for item in items])
        known = [item for item in items if item.catalog_id in tracks]
        unknown = [item for item in items if item.catalog_id not in tracks]

        # Deduped across the batch in claim order, so a shared ISRC goes to the first item.
        candidates = _requests(known, tracks)
        split = await split_unsettled(
            list(candidates),
            uow_factory=self._uow_factory,
            index=self._index,
            clock=self._clock,
            metrics=self._metrics,
        )
        jobs = {job.item_id: job for job in command.jobs}
        async with self._uow_factory() as uow:
            now = self._clock.now()
            ours = await uow.jobs.extend_leases(
                [item.id for item in items], worker=command.worker, lease=command.lease, now=now
            )
            # Lost to another worker, or removed since the read: either way, not ours to write.
            for item in items:
                if item.id not in ours:
                    outcomes[item.id] = JobOutcome.LOST_LEASE
            still_known = [item for item in known if item.id in ours]
            for item in unknown:
                if item.id in ours:
                    reason = str(CatalogItemNotFound("track", item.catalog_id.value))
                    # Rare (a track id TIDAL does not know), so one statement per job is fine.
                    await uow.jobs.give_up(item.id, worker=command.worker, reason=reason, now=now)
            if len(still_known) < len(known):
                # An ISRC whose first holder was lost goes to the next holder still ours.
                candidates = _requests(still_known, tracks)
            known = still_known
            await uow.jobs.describe_items(
                [
                    ItemDescription(
                        item.id,
                        title=tracks[item.catalog_id].title,
                        artist_names=tracks[item.catalog_id].artist_names,
                    )
                    for item in known
                ]
            )
            await uow.ledger.link_many(
                {
                    item.id: [ItemTrackLink(0, item.catalog_id, tracks[item.catalog_id].isrc)]
                    for item in known
                }
            )
            await uow.ledger.record_indexed(
                [candidates[isrc] for isrc in split.already_indexed if isrc in candidates],
                now=now,
            )
            recorded = await uow.ledger.record_requests(
                [candidates[isrc] for isrc in split.to_schedule if isrc in candidates], now=now
            )
            await uow.commit()
        for item in unknown:
            if item.id in ours:
                outcomes[item.id] = JobOutcome.FAILED
                self._metrics.job_failed(permanent=True)
        if recorded:
            await self._dispatch()  # a refusal defers the rows; the relay's sweep retries them
        if not known:
            return
        async with self._uow_factory() as uow:
            await uow.jobs.finish_many(
                [item.id for item in known], worker=command.worker, now=self._clock.now()
            )
            await uow.commit()
        finished = self._clock.now()
        for item in known:
            outcomes[item.id] = JobOutcome.DONE
            self._metrics.job_finished(
                seconds_since_enqueued=(finished - jobs[item.id].enqueued_at).total_seconds()
            )

    async def _retry_later(
        self, command: ScheduleTrackBatchCommand, jobs: Sequence[ClaimedJob], *, reason: str
    ) -> None:
        if not jobs:
            return
        now = self._clock.now()
        async with self._uow_factory() as uow:
            # Rare (the catalogue or the database is down), so one statement per job is fine;
            # each keeps its own backoff, from its own attempts.
            for job in jobs:
                await uow.jobs.retry_later(
                    job.item_id,
                    worker=command.worker,
                    reason=reason,
                    run_after=retry_at(job, now),
                    now=now,
                )
            await uow.commit()


def _requests(
    items: Sequence[LibraryItem], tracks: Mapping[CatalogId, CatalogTrack]
) -> dict[Isrc, IngestionRequest]:
    """The items' tracks as requests, one per ISRC, the first item in claim order winning."""
    seen: set[Isrc] = set()
    requests: dict[Isrc, IngestionRequest] = {}
    for item in items:
        requests |= new_requests(item, (tracks[item.catalog_id],), seen)
    return requests
