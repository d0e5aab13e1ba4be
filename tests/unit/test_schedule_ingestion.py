"""ScheduleIngestion against in-memory fakes: how many index calls, transactions and sends an
album costs, the order its tracks are linked in, dedupe across the first page and the batch,
prefetching (made observable with events, never with timing), and how failures end a job."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from application.ports.catalog import (
    AlbumPage,
    CatalogAlbum,
    CatalogItemNotFound,
    CatalogTrack,
    CatalogUnavailable,
)
from application.ports.metrics import NoMetrics
from application.ports.scheduling import ClaimedJob, ItemTrackLink
from application.ports.unit_of_work import UnitOfWorkFactory
from application.use_cases.dispatch_pending import DispatchPending, DispatchReport
from application.use_cases.schedule_ingestion import (
    SCHEDULING_BATCH_TRACKS,
    JobOutcome,
    ScheduleIngestion,
    ScheduleIngestionCommand,
)
from domain.ingestion import IngestionRequest
from domain.library import LibraryItem, LibraryItemKind
from domain.values import CatalogId, Isrc, LibraryItemId, UserId
from tests.unit.fakes import FakeClock, StagedLedger, StagedUnitOfWork
from tests.unit.fakes import FakeIndex as Index
from tests.unit.fakes import FakeQueue as Queue

PAGE = 20  # TIDAL's page with include=items
WORKER = "relay-1"
# Generous, and only ever reached when the behaviour under test is missing: a test that waits
# for an event fails after this instead of hanging.
NEVER = 5.0


def isrc(number: int) -> Isrc:
    return Isrc(f"QZSCH26{number:05d}")


def album(size: int, *, isrcs: Sequence[Isrc | None] | None = None) -> list[CatalogTrack]:
    numbers = isrcs if isrcs is not None else [isrc(n) for n in range(1, size + 1)]
    return [
        CatalogTrack(
            catalog_id=CatalogId(str(100_000 + position)),
            isrc=number,
            title=f"Track {position}",
            album_id=CatalogId("777"),
        )
        for position, number in enumerate(numbers)
    ]


# -- the ports --------------------------------------------------------------------------------


@dataclass
class Store:
    """What the fake database holds; only a commit changes it."""

    item: LibraryItem
    lease_ours: bool = True
    leases_left: int | None = None  # lease renewals granted before the job is lost
    described: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    link_writes: list[list[ItemTrackLink]] = field(default_factory=list)
    ledger: dict[Isrc, str] = field(default_factory=dict)  # ISRC -> state
    requests: dict[Isrc, IngestionRequest] = field(default_factory=dict)  # in record order
    recorded_twice: list[Isrc] = field(default_factory=list)
    settled_queries: int = 0
    commits: int = 0
    finished: bool = False
    given_up: list[str] = field(default_factory=list)
    retries: list[str] = field(default_factory=list)

    @property
    def links(self) -> list[ItemTrackLink]:
        return [link for write in self.link_writes for link in write]


class Jobs:
    def __init__(self, store: Store, staged: list[Callable[[], None]]) -> None:
        self.store = store
        self.staged = staged

    async def item(self, item_id: LibraryItemId) -> LibraryItem | None:
        return self.store.item if self.store.item.id == item_id else None

    async def extend_lease(
        self, item_id: LibraryItemId, *, worker: str, lease: timedelta, now: datetime
    ) -> bool:
        if self.store.leases_left is not None:
            if self.store.leases_left == 0:
                self.store.lease_ours = False
            self.store.leases_left -= 1
        return self.store.lease_ours

    async def describe_item(
        self, item_id: LibraryItemId, *, title: str, artist_names: Sequence[str]
    ) -> None:
        self.staged.append(lambda: self.store.described.append((title, tuple(artist_names))))

    async def finish(self, item_id: LibraryItemId, *, worker: str, now: datetime) -> None:
        self.staged.append(lambda: setattr(self.store, "finished", True))

    async def give_up(
        self, item_id: LibraryItemId, *, worker: str, reason: str, now: datetime
    ) -> None:
        self.staged.append(lambda: self.store.given_up.append(reason))

    async def retry_later(
        self,
        item_id: LibraryItemId,
        *,
        worker: str,
        reason: str,
        run_after: datetime,
        now: datetime,
    ) -> None:
        self.staged.append(lambda: self.store.retries.append(reason))


class Ledger(StagedLedger):
    async def link_tracks(self, item_id: LibraryItemId, links: Sequence[ItemTrackLink]) -> None:
        written = list(links)
        self.staged.append(lambda: self.store.link_writes.append(written))


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
    """An album served in pages of 20. `asked[n]` is set once page n (from 0) is asked for;
    page n is delivered only once `gates[n]` is set (all are set unless a test clears one);
    `fail_at` raises instead of delivering that page."""

    def __init__(self, tracks: list[CatalogTrack], fail_at: dict[int, Exception] | None = None):
        self.tracks = tracks
        self.fail_at = fail_at or {}
        self.pages = max(1, -(-len(tracks) // PAGE))
        self.asked = [asyncio.Event() for _ in range(self.pages)]
        self.gates = [asyncio.Event() for _ in range(self.pages)]
        for gate in self.gates:
            gate.set()
        self.closed = False

    async def track(self, track_id: CatalogId) -> CatalogTrack:
        found = next((t for t in self.tracks if t.catalog_id == track_id), None)
        if found is None:
            raise CatalogItemNotFound("track", track_id.value)
        return found

    async def tracks(self, track_ids: Sequence[CatalogId]) -> dict[CatalogId, CatalogTrack]:
        return {t.catalog_id: t for t in self.tracks if t.catalog_id in track_ids}

    async def album_pages(self, album_id: CatalogId) -> AsyncIterator[AlbumPage]:
        header = CatalogAlbum(album_id, "An album", ("An artist",))
        try:
            for number in range(self.pages):
                self.asked[number].set()
                await self.gates[number].wait()
                if number in self.fail_at:
                    raise self.fail_at[number]
                chunk = tuple(self.tracks[number * PAGE : (number + 1) * PAGE])
                yield AlbumPage(header, chunk, is_last=number == self.pages - 1)
        finally:
            self.closed = True


@dataclass
class World:
    store: Store
    catalog: Catalog
    index: Index
    queue: Queue
    schedule: ScheduleIngestion
    dispatches: list[DispatchReport]

    async def run(self) -> JobOutcome:
        job = ClaimedJob(
            self.store.item.id, attempts=1, enqueued_at=datetime(2026, 1, 1, tzinfo=UTC)
        )
        command = ScheduleIngestionCommand(job=job, worker=WORKER, lease=timedelta(seconds=15))
        return await self.schedule(command)


def world(
    tracks: list[CatalogTrack],
    *,
    kind: LibraryItemKind = LibraryItemKind.ALBUM,
    fail_at: dict[int, Exception] | None = None,
    held: set[Isrc] | None = None,
) -> World:
    item = LibraryItem(
        id=LibraryItemId(uuid.uuid4()),
        user_id=UserId("alice"),
        kind=kind,
        catalog_id=CatalogId("777") if kind is LibraryItemKind.ALBUM else tracks[0].catalog_id,
        added_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    store = Store(item)
    # The fake speaks the two parts of the unit of work that scheduling uses.
    uow_factory = cast(UnitOfWorkFactory, lambda: UnitOfWork(store))
    catalog, index, queue, clock = Catalog(tracks, fail_at), Index(held), Queue(), FakeClock()
    dispatch = DispatchPending(uow_factory, queue, clock, NoMetrics())
    reports: list[DispatchReport] = []

    async def counted_dispatch() -> DispatchReport:
        report = await dispatch()
        reports.append(report)
        return report

    schedule = ScheduleIngestion(uow_factory, catalog, index, counted_dispatch, clock, NoMetrics())
    return World(store, catalog, index, queue, schedule, reports)


async def run_without_leftovers(w: World) -> JobOutcome:
    """Run the job; every task it started has ended by the time it returns."""
    before = asyncio.all_tasks()
    outcome = await w.run()
    assert asyncio.all_tasks() <= before, asyncio.all_tasks() - before
    return outcome


async def until(condition: Callable[[], bool]) -> None:
    """Let the other tasks run until `condition` holds; counted in turns of the loop, not time."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


# -- call counts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "index_calls", "dispatches", "sends"),
    [
        (1, [1], 1, [1]),
        (20, [20], 1, [20]),
        (120, [20, 100], 2, [20, 100]),
        (500, [20, 480], 2, [20, 480]),
        # The batch after the first page stops at 1,000 tracks; the queue takes 500 a send.
        (1_200, [20, 1_000, 180], 3, [20, 500, 500, 180]),
    ],
)
async def test_the_first_page_goes_alone_and_the_rest_in_batches_of_a_thousand(
    size: int, index_calls: list[int], dispatches: int, sends: list[int]
) -> None:
    w = world(album(size))

    assert await run_without_leftovers(w) is JobOutcome.DONE

    assert w.index.calls == index_calls
    assert w.store.settled_queries == len(index_calls)
    assert len(w.dispatches) == dispatches
    assert [len(batch) for batch in w.queue.sends] == sends
    assert w.queue.events == [isrc(n) for n in range(1, size + 1)]
    # A transaction per batch, one per send (DispatchPending), and the job's end.
    assert w.store.commits == len(index_calls) + len(sends) + 1
    assert w.store.finished
    assert w.store.described == [("An album", ("An artist",))]


def test_the_batch_bound_is_what_one_index_lookup_takes() -> None:
    assert SCHEDULING_BATCH_TRACKS == 1_000


async def test_a_track_item_is_an_album_of_one() -> None:
    tracks = album(3)
    w = world(tracks[1:2], kind=LibraryItemKind.TRACK)

    assert await run_without_leftovers(w) is JobOutcome.DONE

    assert w.index.calls == [1]
    assert [len(batch) for batch in w.queue.sends] == [1]
    assert w.queue.sends[0][0].album_id == CatalogId("777")
    assert w.store.described == [("Track 1", ())]


# -- links and dedupe -------------------------------------------------------------------------


async def test_every_track_is_linked_in_album_order_and_each_isrc_requested_once() -> None:
    numbers: list[Isrc | None] = [isrc(n) for n in range(1, 121)]
    numbers[24] = numbers[2]  # the first page's ISRC again, in the batch
    numbers[70] = numbers[45]  # twice inside the batch
    numbers[5] = None  # no ISRC, on the first page
    numbers[99] = None  # and in the batch
    tracks = album(120, isrcs=numbers)
    w = world(tracks)

    assert await run_without_leftovers(w) is JobOutcome.DONE

    assert w.store.links == [
        ItemTrackLink(position, track.catalog_id, track.isrc)
        for position, track in enumerate(tracks)
    ]
    # Written in two transactions: the first page, then the other 100.
    assert [len(write) for write in w.store.link_writes] == [20, 100]
    first_seen = list(dict.fromkeys(n for n in numbers if n is not None))
    assert w.queue.events == first_seen
    assert w.index.calls == [19, 97]
    # The first track in album order wins.
    assert w.store.requests[isrc(3)].track_id == tracks[2].catalog_id
    assert w.store.requests[isrc(46)].track_id == tracks[45].catalog_id
    assert not w.store.recorded_twice


async def test_what_the_ledger_settled_or_the_index_holds_is_not_requested() -> None:
    w = world(album(120), held={isrc(2), isrc(50)})
    w.store.ledger[isrc(1)] = "dispatched"
    w.store.ledger[isrc(40)] = "indexed"

    assert await run_without_leftovers(w) is JobOutcome.DONE

    assert w.index.calls == [19, 99]
    assert w.store.ledger[isrc(2)] == w.store.ledger[isrc(50)] == "indexed"
    assert set(w.queue.events) == {isrc(n) for n in range(1, 121)} - {
        isrc(1),
        isrc(2),
        isrc(40),
        isrc(50),
    }


async def test_an_unavailable_index_fails_open() -> None:
    w = world(album(120), held={isrc(2)})
    w.index.up = False

    assert await run_without_leftovers(w) is JobOutcome.DONE

    assert w.queue.events == [isrc(n) for n in range(1, 121)]


# -- prefetching ------------------------------------------------------------------------------


async def test_the_next_page_is_asked_for_while_the_first_is_handled() -> None:
    w = world(album(60))
    w.catalog.gates[1].clear()  # page 2 is asked for, but arrives only when the test says

    async def the_second_page_is_asked_for() -> None:
        if len(w.index.calls) == 1:  # the first page's index call, still unanswered
            await asyncio.wait_for(w.catalog.asked[1].wait(), NEVER)

    w.index.before_answer = the_second_page_is_asked_for
    job = asyncio.create_task(w.run())
    # The first page's events leave while page 2 is still on its way.
    await until(lambda: bool(w.queue.sends) or job.done())
    assert not job.done()
    assert w.queue.events == [isrc(n) for n in range(1, 21)]
    assert not w.catalog.asked[2].is_set()  # only the page being fetched

    w.catalog.gates[1].set()
    assert await job is JobOutcome.DONE
    assert w.index.calls == [20, 40]
    assert w.queue.events == [isrc(n) for n in range(1, 61)]


async def test_later_pages_are_asked_for_while_a_full_batch_is_written() -> None:
    w = world(album(1_100))

    async def the_page_after_the_batch_is_asked_for() -> None:
        if len(w.index.calls) == 2:  # the index call of the batch of pages 2 to 51
            await asyncio.wait_for(w.catalog.asked[51].wait(), NEVER)

    w.index.before_answer = the_page_after_the_batch_is_asked_for

    assert await run_without_leftovers(w) is JobOutcome.DONE
    assert w.index.calls == [20, 1_000, 80]


# -- failures ---------------------------------------------------------------------------------


async def test_a_catalogue_failing_mid_stream_retries_the_job_after_writing_what_arrived() -> None:
    w = world(album(100), fail_at={3: CatalogUnavailable("TIDAL answered 503")})

    assert await run_without_leftovers(w) is JobOutcome.RETRY

    assert w.store.retries == ["TIDAL answered 503"]
    assert not w.store.finished
    assert [len(write) for write in w.store.link_writes] == [20, 40]
    assert w.queue.events == [isrc(n) for n in range(1, 61)]
    assert w.catalog.closed

    # The retry records and sends only the rest: the ledger is keyed by ISRC.
    w.catalog.fail_at.clear()
    assert await run_without_leftovers(w) is JobOutcome.DONE
    assert w.queue.events == [isrc(n) for n in range(1, 101)]
    assert not w.store.recorded_twice
    assert w.store.links[-1].position == 99


async def test_an_album_the_catalogue_does_not_know_fails_the_job_for_good() -> None:
    w = world(album(40), fail_at={0: CatalogItemNotFound("album", "777")})

    assert await run_without_leftovers(w) is JobOutcome.FAILED

    assert w.store.given_up == ["album 777 is not in the catalogue"]
    assert (w.store.links, w.index.calls, w.queue.sends) == ([], [], [])
    assert not w.store.retries


async def test_an_unexpected_failure_of_the_stream_retries_the_job_and_is_raised() -> None:
    w = world(album(40), fail_at={1: RuntimeError("a bug")})

    with pytest.raises(RuntimeError, match="a bug"):
        await run_without_leftovers(w)

    assert w.store.retries == ["a bug"]
    assert w.queue.events == [isrc(n) for n in range(1, 21)]


async def test_a_job_that_loses_its_lease_stops_without_writing_and_stops_fetching() -> None:
    w = world(album(1_200))
    w.store.leases_left = 1  # the first page's transaction, then the lease is gone

    assert await run_without_leftovers(w) is JobOutcome.LOST_LEASE

    assert [len(write) for write in w.store.link_writes] == [20]
    assert w.queue.events == [isrc(n) for n in range(1, 21)]
    assert w.index.calls == [20, 1_000]  # asked before the lease was found gone
    assert not (w.store.finished or w.store.retries or w.store.given_up)
    # The fetch stopped with the job: only a few pages past the batch were asked for.
    assert w.catalog.closed
    assert not w.catalog.asked[-1].is_set()


async def test_a_lost_lease_with_the_catalogue_mid_page_ends_the_fetch_too() -> None:
    w = world(album(120))
    w.store.leases_left = 0
    w.catalog.gates[1].clear()  # never released: the fetch of page 2 hangs

    assert await run_without_leftovers(w) is JobOutcome.LOST_LEASE

    assert w.store.links == []
    assert w.catalog.asked[1].is_set()
    assert w.catalog.closed


async def test_a_cancelled_job_leaves_no_task_behind() -> None:
    w = world(album(120))
    w.catalog.gates[2].clear()  # the job waits for page 3 forever
    before = asyncio.all_tasks()
    job = asyncio.create_task(w.run())
    await until(lambda: bool(w.store.link_writes) and w.catalog.asked[2].is_set())

    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job

    assert asyncio.all_tasks() <= before
    assert w.catalog.closed
    assert [len(write) for write in w.store.link_writes] == [20]


async def test_with_the_queue_down_the_job_stops_dispatching_and_still_records_everything() -> None:
    w = world(album(1_200))
    w.queue.up = False

    assert await run_without_leftovers(w) is JobOutcome.DONE

    assert len(w.dispatches) == 1  # the first refusal; the relay's sweep sends the rest
    assert set(w.store.ledger.values()) == {"requested"}
    assert len(w.store.ledger) == 1_200
