"""ScheduleTrackBatch against in-memory fakes: what a batch of track jobs costs (one of each call
for the whole batch), and that every job still ends on its own: unknown tracks, removed items,
lost leases, shared ISRCs, transient failures."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from application.ports.catalog import CatalogTrack, CatalogUnavailable
from application.ports.scheduling import (
    ClaimedJob,
    ItemDescription,
    ItemTrackLink,
)
from application.ports.unit_of_work import UnitOfWorkFactory
from application.use_cases.dispatch_pending import DispatchPending, DispatchReport
from application.use_cases.schedule_common import JOB_RETRY_BASE, JobOutcome
from application.use_cases.schedule_track_batch import (
    ScheduleTrackBatch,
    ScheduleTrackBatchCommand,
)
from domain.ingestion import IngestionRequest
from domain.library import LibraryItem, LibraryItemKind
from domain.values import CatalogId, Isrc, LibraryItemId, UserId
from tests.unit.fakes import FakeClock, StagedLedger, StagedUnitOfWork
from tests.unit.fakes import FakeIndex as Index
from tests.unit.fakes import FakeQueue as Queue

WORKER = "relay-1"
ENQUEUED = datetime(2026, 1, 1, tzinfo=UTC)


def isrc(number: int) -> Isrc:
    return Isrc(f"QZBAT26{number:05d}")


def track(number: int, *, isrc_number: int | None = None) -> CatalogTrack:
    return CatalogTrack(
        catalog_id=CatalogId(str(500_000 + number)),
        isrc=isrc(isrc_number if isrc_number is not None else number),
        title=f"Track {number}",
        artist_names=(f"Artist {number}",),
        album_id=CatalogId(str(900_000 + number)),
    )


# -- the ports --------------------------------------------------------------------------------


@dataclass
class Job:
    status: str = "pending"
    locked_by: str | None = WORKER
    last_error: str | None = None
    run_after: datetime | None = None


@dataclass
class Store:
    """What the fake database holds; only a commit changes it."""

    items: dict[LibraryItemId, LibraryItem] = field(default_factory=dict)
    jobs: dict[LibraryItemId, Job] = field(default_factory=dict)
    described: dict[LibraryItemId, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    links: dict[LibraryItemId, list[ItemTrackLink]] = field(default_factory=dict)
    ledger: dict[Isrc, str] = field(default_factory=dict)  # ISRC -> state
    requests: dict[Isrc, IngestionRequest] = field(default_factory=dict)
    recorded_twice: list[Isrc] = field(default_factory=list)
    item_reads: int = 0
    settled_queries: int = 0
    commits: int = 0
    # Called as the write transaction renews its leases: what happens meanwhile elsewhere.
    before_extend: Callable[[], None] | None = None


class Jobs:
    def __init__(self, store: Store, staged: list[Callable[[], None]]) -> None:
        self.store = store
        self.staged = staged

    async def items(self, item_ids: Sequence[LibraryItemId]) -> dict[LibraryItemId, LibraryItem]:
        self.store.item_reads += 1
        return {i: self.store.items[i] for i in item_ids if i in self.store.items}

    async def extend_leases(
        self, item_ids: Sequence[LibraryItemId], *, worker: str, lease: timedelta, now: datetime
    ) -> set[LibraryItemId]:
        if self.store.before_extend is not None:
            self.store.before_extend()
        return {
            i
            for i in item_ids
            if (job := self.store.jobs.get(i)) is not None
            and job.locked_by == worker
            and job.status == "pending"
        }

    async def describe_items(self, descriptions: Sequence[ItemDescription]) -> None:
        def apply() -> None:
            for d in descriptions:
                self.store.described[d.item_id] = (d.title, tuple(d.artist_names))

        self.staged.append(apply)

    async def finish_many(
        self, item_ids: Sequence[LibraryItemId], *, worker: str, now: datetime
    ) -> None:
        self.staged.append(lambda: self._settle(item_ids, worker, "done", None))

    async def give_up(
        self, item_id: LibraryItemId, *, worker: str, reason: str, now: datetime
    ) -> None:
        self.staged.append(lambda: self._settle([item_id], worker, "failed", reason))

    async def retry_later(
        self,
        item_id: LibraryItemId,
        *,
        worker: str,
        reason: str,
        run_after: datetime,
        now: datetime,
    ) -> None:
        def apply() -> None:
            job = self.store.jobs.get(item_id)
            if job is not None and job.locked_by == worker:
                job.locked_by, job.last_error, job.run_after = None, reason, run_after

        self.staged.append(apply)

    def _settle(
        self, item_ids: Sequence[LibraryItemId], worker: str, status: str, error: str | None
    ) -> None:
        for item_id in item_ids:
            job = self.store.jobs.get(item_id)
            if job is not None and job.locked_by == worker:
                job.status, job.locked_by, job.last_error = status, None, error


class Ledger(StagedLedger):
    async def link_many(self, links: Mapping[LibraryItemId, Sequence[ItemTrackLink]]) -> None:
        written = {item_id: list(item_links) for item_id, item_links in links.items()}
        self.staged.append(lambda: self.store.links.update(written))


class UnitOfWork(StagedUnitOfWork):
    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.jobs = Jobs(store, self.staged)
        self.ledger = Ledger(store, self.staged)

    async def commit(self) -> None:
        await super().commit()
        self.store.commits += 1


class Catalog:
    def __init__(self, tracks: Sequence[CatalogTrack]) -> None:
        self.known = {t.catalog_id: t for t in tracks}
        self.calls: list[list[CatalogId]] = []
        self.failure: Exception | None = None

    async def tracks(self, track_ids: Sequence[CatalogId]) -> dict[CatalogId, CatalogTrack]:
        self.calls.append(list(track_ids))
        if self.failure is not None:
            raise self.failure
        return {i: self.known[i] for i in track_ids if i in self.known}


class Metrics:
    def __init__(self) -> None:
        self.finished = 0
        self.failed: list[bool] = []  # `permanent`, per failed job

    def job_claimed(self) -> None:
        return None

    def job_finished(self, *, seconds_since_enqueued: float) -> None:
        assert seconds_since_enqueued >= 0
        self.finished += 1

    def job_failed(self, *, permanent: bool) -> None:
        self.failed.append(permanent)

    def index_failed_open(self) -> None:
        return None

    def events_dispatched(self, count: int) -> None:
        return None

    def dispatch_failed(self) -> None:
        return None


@dataclass
class World:
    store: Store
    catalog: Catalog
    index: Index
    queue: Queue
    metrics: Metrics
    schedule: ScheduleTrackBatch
    dispatches: list[DispatchReport]
    jobs: list[ClaimedJob]

    def item_of(self, number: int) -> LibraryItemId:
        return self.jobs[number].item_id

    async def run(self, jobs: Sequence[ClaimedJob] | None = None) -> list[JobOutcome]:
        command = ScheduleTrackBatchCommand(
            jobs=tuple(self.jobs if jobs is None else jobs),
            worker=WORKER,
            lease=timedelta(seconds=15),
        )
        outcomes = await self.schedule(command)
        assert set(outcomes) == {job.item_id for job in command.jobs}
        return [outcomes[job.item_id] for job in command.jobs]

    def statuses(self) -> list[str]:
        return [self.store.jobs[job.item_id].status for job in self.jobs]


def world(added: Sequence[CatalogTrack], *, known: Sequence[CatalogTrack] | None = None) -> World:
    """A batch of one job per track of `added` (each its own user's item), in that order; the
    catalogue knows `known` (by default, every one of them)."""
    store = Store()
    jobs = []
    for number, added_track in enumerate(added):
        item = LibraryItem(
            id=LibraryItemId(uuid.uuid4()),
            user_id=UserId(f"user-{number}"),
            kind=LibraryItemKind.TRACK,
            catalog_id=added_track.catalog_id,
            added_at=ENQUEUED,
        )
        store.items[item.id] = item
        store.jobs[item.id] = Job()
        jobs.append(ClaimedJob(item.id, attempts=number % 3 + 1, enqueued_at=ENQUEUED))
    uow_factory = cast(UnitOfWorkFactory, lambda: UnitOfWork(store))
    catalog = Catalog(added if known is None else known)
    index, queue, clock, metrics = Index(), Queue(), FakeClock(), Metrics()
    dispatch = DispatchPending(uow_factory, queue, clock, metrics)
    reports: list[DispatchReport] = []

    async def counted_dispatch() -> DispatchReport:
        report = await dispatch()
        reports.append(report)
        return report

    schedule = ScheduleTrackBatch(uow_factory, catalog, index, counted_dispatch, clock, metrics)
    return World(store, catalog, index, queue, metrics, schedule, reports, jobs)


# -- call counts ------------------------------------------------------------------------------


async def test_fifty_track_jobs_cost_one_call_of_each_kind() -> None:
    tracks = [track(n) for n in range(50)]
    w = world(tracks)

    assert await w.run() == [JobOutcome.DONE] * 50

    assert w.store.item_reads == 1
    assert w.catalog.calls == [[t.catalog_id for t in tracks]]
    assert w.store.settled_queries == 1
    assert w.index.calls == [50]
    assert len(w.dispatches) == 1
    assert [len(batch) for batch in w.queue.sends] == [50]
    assert w.queue.events == [t.isrc for t in tracks]
    # The write, the send's own transaction (DispatchPending), and the jobs' end.
    assert w.store.commits == 3
    assert w.statuses() == ["done"] * 50
    assert w.metrics.finished == 50
    for job, t in zip(w.jobs, tracks, strict=True):
        assert w.store.described[job.item_id] == (t.title, t.artist_names)
        assert w.store.links[job.item_id] == [ItemTrackLink(0, t.catalog_id, t.isrc)]
        request = w.store.requests[t.isrc] if t.isrc is not None else None
        assert request is not None
        assert (request.library_item_id, request.album_id) == (job.item_id, t.album_id)


async def test_what_the_ledger_settled_or_the_index_holds_is_not_requested() -> None:
    tracks = [track(n) for n in range(4)]
    w = world(tracks)
    w.store.ledger[isrc(0)] = "dispatched"
    w.index.held = {isrc(1)}

    assert await w.run() == [JobOutcome.DONE] * 4

    assert w.index.calls == [3]
    assert w.store.ledger[isrc(1)] == "indexed"
    assert w.queue.events == [isrc(2), isrc(3)]
    assert set(w.store.links) == {job.item_id for job in w.jobs}


async def test_an_unavailable_index_fails_open() -> None:
    w = world([track(n) for n in range(3)])
    w.index.up = False

    assert await w.run() == [JobOutcome.DONE] * 3

    assert w.queue.events == [isrc(0), isrc(1), isrc(2)]


async def test_nothing_to_request_still_links_and_finishes_without_a_dispatch() -> None:
    w = world([track(0), track(1)])
    w.store.ledger.update({isrc(0): "indexed", isrc(1): "requested"})

    assert await w.run() == [JobOutcome.DONE] * 2

    assert (w.index.calls, w.dispatches) == ([], [])
    assert len(w.store.links) == 2
    assert w.statuses() == ["done", "done"]


# -- each job ends on its own -----------------------------------------------------------------


async def test_a_track_the_catalogue_does_not_know_fails_only_its_own_job() -> None:
    tracks = [track(n) for n in range(3)]
    w = world(tracks, known=[tracks[0], tracks[2]])

    assert await w.run() == [JobOutcome.DONE, JobOutcome.FAILED, JobOutcome.DONE]

    assert w.statuses() == ["done", "failed", "done"]
    missing = w.store.jobs[w.item_of(1)]
    assert missing.last_error == f"track {tracks[1].catalog_id.value} is not in the catalogue"
    assert w.item_of(1) not in w.store.links
    assert w.queue.events == [isrc(0), isrc(2)]
    assert (w.metrics.finished, w.metrics.failed) == (2, [True])


async def test_an_unavailable_catalogue_retries_every_job_with_its_own_backoff() -> None:
    w = world([track(n) for n in range(3)])
    w.catalog.failure = CatalogUnavailable("TIDAL answered 503")

    assert await w.run() == [JobOutcome.RETRY] * 3

    assert w.statuses() == ["pending"] * 3
    for job in w.jobs:
        row = w.store.jobs[job.item_id]
        assert (row.locked_by, row.last_error) == (None, "TIDAL answered 503")
        assert row.run_after is not None
    run_after = [w.store.jobs[job.item_id].run_after or ENQUEUED for job in w.jobs]
    # Attempts 1, 2 and 3: base, 2 x base and 4 x base after the same moment.
    assert [later - run_after[0] for later in run_after] == [
        timedelta(0),
        JOB_RETRY_BASE,
        3 * JOB_RETRY_BASE,
    ]
    assert (w.store.links, w.store.ledger, w.queue.sends) == ({}, {}, [])
    assert w.metrics.failed == [False] * 3


async def test_an_unexpected_failure_retries_every_job_and_is_raised() -> None:
    w = world([track(n) for n in range(2)])
    w.catalog.failure = RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        await w.run()

    assert [w.store.jobs[job.item_id].last_error for job in w.jobs] == ["a bug", "a bug"]
    assert w.statuses() == ["pending", "pending"]


async def test_a_failure_after_some_jobs_ended_retries_only_the_others() -> None:
    tracks = [track(n) for n in range(3)]
    w = world(tracks, known=tracks[:2])
    w.queue.failure = RuntimeError("the dispatch broke")  # after the write committed

    with pytest.raises(RuntimeError, match="the dispatch broke"):
        await w.run()

    # The unknown track's job had already failed for good; the others run again.
    assert w.statuses() == ["pending", "pending", "failed"]
    assert w.store.ledger == {isrc(0): "requested", isrc(1): "requested"}

    for job in w.jobs[:2]:
        w.store.jobs[job.item_id].locked_by = WORKER  # claimed again
    w.queue.failure = None
    assert await w.run(w.jobs[:2]) == [JobOutcome.DONE] * 2
    # Recorded by the first run, so not again: the relay's dispatch sweep sends them.
    assert not w.store.recorded_twice
    assert w.store.ledger == {isrc(0): "requested", isrc(1): "requested"}
    assert w.statuses() == ["done", "done", "failed"]


async def test_a_removed_item_is_skipped() -> None:
    w = world([track(n) for n in range(3)])
    del w.store.items[w.item_of(1)]
    del w.store.jobs[w.item_of(1)]

    assert await w.run() == [JobOutcome.DONE, JobOutcome.GONE, JobOutcome.DONE]

    assert w.catalog.calls == [[track(0).catalog_id, track(2).catalog_id]]
    assert w.queue.events == [isrc(0), isrc(2)]


async def test_an_item_removed_during_the_batch_is_not_written() -> None:
    w = world([track(n) for n in range(2)])

    def removed() -> None:
        del w.store.items[w.item_of(0)]
        del w.store.jobs[w.item_of(0)]

    w.store.before_extend = removed

    assert await w.run() == [JobOutcome.LOST_LEASE, JobOutcome.DONE]

    assert list(w.store.links) == [w.item_of(1)]
    assert w.queue.events == [isrc(1)]


async def test_a_job_whose_lease_was_lost_is_not_written_and_its_isrc_passes_on() -> None:
    # Items 0 and 1 share an ISRC; item 0's job was taken over by another worker.
    tracks = [track(0), track(1, isrc_number=0), track(2)]
    w = world(tracks)

    def taken_over() -> None:
        w.store.jobs[w.item_of(0)].locked_by = "relay-2"

    w.store.before_extend = taken_over

    assert await w.run() == [JobOutcome.LOST_LEASE, JobOutcome.DONE, JobOutcome.DONE]

    assert w.item_of(0) not in w.store.links
    assert w.item_of(0) not in w.store.described
    assert w.store.jobs[w.item_of(0)].status == "pending"  # the other worker's to finish
    assert w.store.requests[isrc(0)].library_item_id == w.item_of(1)
    assert w.queue.events == [isrc(0), isrc(2)]


async def test_an_isrc_in_two_items_is_requested_once_and_both_are_linked() -> None:
    tracks = [track(0), track(1), track(2, isrc_number=0)]
    w = world(tracks)

    assert await w.run() == [JobOutcome.DONE] * 3

    assert w.index.calls == [2]
    assert w.queue.events == [isrc(0), isrc(1)]
    # The first in claim order records it.
    assert w.store.requests[isrc(0)].library_item_id == w.item_of(0)
    assert w.store.links[w.item_of(0)] == [ItemTrackLink(0, tracks[0].catalog_id, isrc(0))]
    assert w.store.links[w.item_of(2)] == [ItemTrackLink(0, tracks[2].catalog_id, isrc(0))]
    assert not w.store.recorded_twice


async def test_running_a_batch_again_records_and_sends_nothing_twice() -> None:
    w = world([track(n) for n in range(5)])
    assert await w.run() == [JobOutcome.DONE] * 5

    for job in w.jobs:  # as if the jobs had been claimed again (a crash before the end)
        w.store.jobs[job.item_id] = Job()
    assert await w.run() == [JobOutcome.DONE] * 5

    assert w.queue.events == [isrc(n) for n in range(5)]
    assert not w.store.recorded_twice
    assert w.statuses() == ["done"] * 5


async def test_with_the_queue_down_the_jobs_are_done_and_the_requests_wait() -> None:
    w = world([track(n) for n in range(3)])
    w.queue.up = False

    assert await w.run() == [JobOutcome.DONE] * 3

    assert [report.queue_unavailable for report in w.dispatches] == [True]
    assert set(w.store.ledger.values()) == {"requested"}
