"""ScheduleIngestion against in-memory fakes: what a claimed batch of jobs costs (an album: the
first page alone, the rest in writes of up to 1,000 tracks; track jobs: one of each call for the
whole batch), the order tracks are linked in, dedupe across pages and items, and that every job
ends on its own: unknown items, removed items, lost leases, shared ISRCs, transient failures."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from application.ports.catalog import (
    READING_FOR,
    AlbumPage,
    CatalogAlbum,
    CatalogPlaylist,
    CatalogTrack,
    CatalogUnavailable,
)
from application.ports.scheduling import ClaimedJob, ItemTrackLink
from application.use_cases.dispatch_pending import DispatchPending, DispatchReport
from application.use_cases.schedule_ingestion import (
    JOB_RETRY_BASE,
    SCHEDULING_BATCH_TRACKS,
    JobOutcome,
    ScheduleIngestion,
    ScheduleIngestionCommand,
)
from domain.library import LibraryItem, LibraryItemKind
from domain.values import CatalogId, Isrc, LibraryItemId, UserId
from tests.unit.fakes import (
    FakeCatalog,
    FakeClock,
    FakeIndex,
    FakeQueue,
    SchedulingStore,
    scheduling_uow_factory,
)

WORKER = "relay-1"
ENQUEUED = datetime(2026, 1, 1, tzinfo=UTC)
ALBUM_ID = CatalogId("777")
HEADER = CatalogAlbum(ALBUM_ID, "An album", ("An artist",))


def isrc(number: int) -> Isrc:
    return Isrc(f"QZSCH26{number:05d}")


def album(size: int, *, isrcs: Sequence[Isrc | None] | None = None) -> list[CatalogTrack]:
    numbers = isrcs if isrcs is not None else [isrc(n) for n in range(1, size + 1)]
    return [
        CatalogTrack(
            catalog_id=CatalogId(str(100_000 + position)),
            isrc=number,
            title=f"Track {position}",
            album_id=ALBUM_ID,
        )
        for position, number in enumerate(numbers)
    ]


def single(number: int, *, isrc_number: int | None = None) -> CatalogTrack:
    return CatalogTrack(
        catalog_id=CatalogId(str(500_000 + number)),
        isrc=isrc(isrc_number if isrc_number is not None else 1_000 + number),
        title=f"Single {number}",
        artist_names=(f"Artist {number}",),
        album_id=CatalogId(str(900_000 + number)),
    )


class Catalog(FakeCatalog):
    """The shared fake catalogue, whose album stream can also break with any exception
    (`broken_at`, a page number from 1) or on a track lookup (`lookup_failure`)."""

    broken_at: tuple[int, Exception] | None = None
    lookup_failure: Exception | None = None

    async def album_pages(self, album_id: CatalogId) -> AsyncIterator[AlbumPage]:
        pages = super().album_pages(album_id)
        try:
            number = 0
            async for page in pages:
                number += 1
                if self.broken_at is not None and self.broken_at[0] == number:
                    raise self.broken_at[1]
                yield page
        finally:
            await pages.aclose()

    async def tracks(self, track_ids: Sequence[CatalogId]) -> dict[CatalogId, CatalogTrack]:
        if self.lookup_failure is not None:
            self.batch_calls.append(list(track_ids))
            raise self.lookup_failure
        return await super().tracks(track_ids)


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
    store: SchedulingStore
    catalog: Catalog
    index: FakeIndex
    queue: FakeQueue
    metrics: Metrics
    schedule: ScheduleIngestion
    dispatches: list[DispatchReport]
    jobs: list[ClaimedJob]
    reasons: dict[LibraryItemId, str] = field(default_factory=dict)  # the last run's

    def item_of(self, number: int) -> LibraryItemId:
        return self.jobs[number].item_id

    async def run(self, jobs: Sequence[ClaimedJob] | None = None) -> list[JobOutcome]:
        """Run the jobs (all by default); every task the run started has ended when it
        returns."""
        command = ScheduleIngestionCommand(
            jobs=tuple(self.jobs if jobs is None else jobs),
            worker=WORKER,
            lease=timedelta(seconds=15),
        )
        before = asyncio.all_tasks()
        outcomes = await self.schedule(command)
        assert asyncio.all_tasks() <= before, asyncio.all_tasks() - before
        assert set(outcomes) == {job.item_id for job in command.jobs}
        self.reasons = dict(outcomes.reasons)
        return [outcomes[job.item_id] for job in command.jobs]

    def claimed_again(self, jobs: Sequence[ClaimedJob] | None = None) -> None:
        for job in self.jobs if jobs is None else jobs:
            self.store.jobs[job.item_id].locked_by = WORKER

    def statuses(self) -> list[str]:
        return [self.store.jobs[job.item_id].status for job in self.jobs]


def world(
    *,
    albums: Sequence[list[CatalogTrack]] = (),
    singles: Sequence[CatalogTrack] = (),
    known: Sequence[CatalogTrack] | None = None,
    held: set[Isrc] | None = None,
) -> World:
    """One job per item, claimed in this order: the albums (each with id 777, 778, ...), then
    one track item per single (each its own user's). The catalogue knows the albums and
    `known` (by default, every single)."""
    store = SchedulingStore()
    jobs = []
    added = [(LibraryItemKind.ALBUM, CatalogId(str(777 + n))) for n in range(len(albums))]
    added += [(LibraryItemKind.TRACK, track.catalog_id) for track in singles]
    for number, (kind, catalog_id) in enumerate(added):
        item = LibraryItem(
            id=LibraryItemId(uuid.uuid4()),
            user_id=UserId(f"user-{number}"),
            kind=kind,
            catalog_id=catalog_id,
            added_at=ENQUEUED,
        )
        store.add(item, worker=WORKER)
        jobs.append(ClaimedJob(item.id, attempts=number % 3 + 1, enqueued_at=ENQUEUED))
    headers = [CatalogAlbum(CatalogId(str(777 + n)), "An album", ("An artist",)) for n in range(3)]
    catalog = Catalog(
        [(headers[n], tracks) for n, tracks in enumerate(albums)],
        singles if known is None else known,
    )
    uow_factory = scheduling_uow_factory(store)
    index, queue, clock, metrics = FakeIndex(held), FakeQueue(), FakeClock(), Metrics()
    dispatch = DispatchPending(uow_factory, queue, clock, metrics)
    reports: list[DispatchReport] = []

    async def counted_dispatch() -> DispatchReport:
        report = await dispatch()
        reports.append(report)
        return report

    schedule = ScheduleIngestion(uow_factory, catalog, index, counted_dispatch, clock, metrics)
    return World(store, catalog, index, queue, metrics, schedule, reports, jobs)


async def until(condition: Callable[[], bool]) -> None:
    """Let the other tasks run until `condition` holds; counted in turns of the loop, not time."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


# -- an album: what it costs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "index_calls", "sends"),
    [
        (1, [1], [1]),
        (20, [20], [20]),
        (120, [20, 100], [20, 100]),
        (500, [20, 480], [20, 480]),
        # A write after the first page stops at 1,000 tracks; the queue takes 500 a send.
        (1_200, [20, 1_000, 180], [20, 500, 500, 180]),
    ],
)
async def test_an_albums_first_page_goes_alone_and_the_rest_in_writes_of_a_thousand(
    size: int, index_calls: list[int], sends: list[int]
) -> None:
    w = world(albums=[album(size)])

    assert await w.run() == [JobOutcome.DONE]

    assert w.index.calls == index_calls
    assert w.store.settled_queries == len(index_calls)
    assert len(w.dispatches) == len(index_calls)
    assert [len(batch) for batch in w.queue.sends] == sends
    assert w.queue.events == [isrc(n) for n in range(1, size + 1)]
    # A transaction per write (the last one ends the job) and one per send (DispatchPending).
    assert w.store.commits == len(index_calls) + len(sends)
    assert w.statuses() == ["done"]
    assert w.store.described == {w.item_of(0): ("An album", ("An artist",))}
    assert w.metrics.finished == 1


def test_the_write_bound_is_what_one_index_lookup_takes() -> None:
    assert SCHEDULING_BATCH_TRACKS == 1_000


async def test_an_album_without_tracks_is_described_and_done() -> None:
    w = world(albums=[[]])

    assert await w.run() == [JobOutcome.DONE]

    assert (w.index.calls, w.queue.sends, w.store.links) == ([], [], [])
    assert w.store.described == {w.item_of(0): ("An album", ("An artist",))}


async def test_the_catalogue_is_read_for_the_items_owner_so_its_pace_can_be_fair() -> None:
    albums = world(albums=[album(45)])
    assert await albums.run() == [JobOutcome.DONE]
    tracks = world(singles=[single(1), single(2)])  # two owners in one lookup
    assert await tracks.run() == [JobOutcome.DONE, JobOutcome.DONE]

    assert albums.catalog.read_for == ["user-0"] * 3  # every page
    assert tracks.catalog.read_for == [None]
    assert READING_FOR.get() is None  # and nothing is left set behind


# -- an album: links and dedupe ---------------------------------------------------------------


async def test_every_track_is_linked_in_album_order_and_each_isrc_requested_once() -> None:
    numbers: list[Isrc | None] = [isrc(n) for n in range(1, 121)]
    numbers[24] = numbers[2]  # the first page's ISRC again, in the later write
    numbers[70] = numbers[45]  # twice inside the later write
    numbers[5] = None  # no ISRC, on the first page
    numbers[99] = None  # and in the later write
    tracks = album(120, isrcs=numbers)
    w = world(albums=[tracks])

    assert await w.run() == [JobOutcome.DONE]

    assert w.store.links == [
        ItemTrackLink(w.item_of(0), position, track.catalog_id, track.isrc)
        for position, track in enumerate(tracks)
    ]
    # Written by two statements: the first page, then the other 100.
    assert [len(write) for write in w.store.link_writes] == [20, 100]
    first_seen = list(dict.fromkeys(n for n in numbers if n is not None))
    assert w.queue.events == first_seen
    assert w.index.calls == [19, 97]
    # The first track in album order wins.
    assert w.store.requests[isrc(3)].track_id == tracks[2].catalog_id
    assert w.store.requests[isrc(46)].track_id == tracks[45].catalog_id
    assert w.store.requests[isrc(3)].album_id == ALBUM_ID
    assert not w.store.recorded_twice


async def test_what_the_ledger_settled_or_the_index_holds_is_not_requested() -> None:
    w = world(albums=[album(120)], held={isrc(2), isrc(50)})
    w.store.ledger[isrc(1)] = "dispatched"
    w.store.ledger[isrc(40)] = "indexed"

    assert await w.run() == [JobOutcome.DONE]

    assert w.index.calls == [19, 99]
    assert w.store.ledger[isrc(2)] == w.store.ledger[isrc(50)] == "indexed"
    assert set(w.queue.events) == {isrc(n) for n in range(1, 121)} - {
        isrc(1),
        isrc(2),
        isrc(40),
        isrc(50),
    }


async def test_an_unavailable_index_fails_open() -> None:
    w = world(albums=[album(120)], held={isrc(2)})
    w.index.up = False

    assert await w.run() == [JobOutcome.DONE]

    assert w.queue.events == [isrc(n) for n in range(1, 121)]


# -- an album: failures -----------------------------------------------------------------------


async def test_a_catalogue_failing_mid_album_retries_the_job_after_writing_what_arrived() -> None:
    w = world(albums=[album(100)])
    w.catalog.fail_before_page = 4

    assert await w.run() == [JobOutcome.RETRY]

    job = w.store.jobs[w.item_of(0)]
    assert (job.status, job.locked_by, job.last_error) == ("pending", None, "page 4 timed out")
    assert [len(write) for write in w.store.link_writes] == [20, 40]
    assert w.queue.events == [isrc(n) for n in range(1, 61)]
    assert w.catalog.events[-1] == "catalogue stream closed"
    assert w.metrics.failed == [False]

    # The retry records and sends only the rest: the ledger is keyed by ISRC.
    w.catalog.fail_before_page = None
    w.claimed_again()
    assert await w.run() == [JobOutcome.DONE]
    assert w.queue.events == [isrc(n) for n in range(1, 101)]
    assert not w.store.recorded_twice
    assert w.store.links[-1].position == 99


async def test_an_album_the_catalogue_does_not_know_fails_the_job_for_good() -> None:
    w = world(albums=[album(40)])
    del w.catalog.albums[ALBUM_ID]

    assert await w.run() == [JobOutcome.FAILED]

    job = w.store.jobs[w.item_of(0)]
    assert (job.status, job.last_error) == ("failed", "album 777 is not in the catalogue")
    assert (w.store.links, w.index.calls, w.queue.sends) == ([], [], [])
    assert w.metrics.failed == [True]
    assert w.reasons == {w.item_of(0): "album 777 is not in the catalogue"}


async def test_an_unexpected_failure_of_the_stream_retries_the_job_and_is_raised() -> None:
    w = world(albums=[album(40)])
    w.catalog.broken_at = (2, RuntimeError("a bug"))

    with pytest.raises(RuntimeError, match="a bug"):
        await w.run()

    assert w.store.jobs[w.item_of(0)].last_error == "a bug"
    assert w.statuses() == ["pending"]
    assert w.queue.events == [isrc(n) for n in range(1, 21)]


async def test_a_job_that_loses_its_lease_stops_writing_and_stops_reading_its_album() -> None:
    w = world(albums=[album(1_200)])
    w.store.leases_left = 1  # the first page's write, then another worker has the job

    assert await w.run() == [JobOutcome.LOST_LEASE]

    assert [len(write) for write in w.store.link_writes] == [20]
    assert w.queue.events == [isrc(n) for n in range(1, 21)]
    assert w.index.calls == [20, 1_000]  # asked before the lease was found gone
    assert w.store.jobs[w.item_of(0)].status == "pending"  # the other worker's to finish
    # The stream was closed with the job: no page past the write that found the loss.
    assert w.catalog.events[-1] == "catalogue stream closed"
    assert "catalogue asked for page 52" not in w.catalog.events


async def test_a_cancelled_job_closes_its_album_stream_at_once() -> None:
    w = world(albums=[album(120)])
    w.catalog.gate_before_page[3] = asyncio.Event()  # never set: page 3 never comes
    job = asyncio.create_task(w.run())
    await until(lambda: "catalogue asked for page 3" in w.catalog.events)

    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job

    assert w.catalog.events[-1] == "catalogue stream closed"
    assert [len(write) for write in w.store.link_writes] == [20]


async def test_with_the_queue_down_the_album_stops_dispatching_and_still_records_all() -> None:
    w = world(albums=[album(1_200)])
    w.queue.up = False

    assert await w.run() == [JobOutcome.DONE]

    assert len(w.dispatches) == 1  # the first refusal; the relay's sweep sends the rest
    assert set(w.store.ledger.values()) == {"requested"}
    assert len(w.store.ledger) == 1_200


# -- track jobs: one of each call for the batch -----------------------------------------------


async def test_fifty_track_jobs_cost_one_call_of_each_kind() -> None:
    tracks = [single(n) for n in range(50)]
    w = world(singles=tracks)

    assert await w.run() == [JobOutcome.DONE] * 50

    assert w.store.item_reads == 1
    assert w.catalog.batch_calls == [[t.catalog_id for t in tracks]]
    assert w.store.settled_queries == 1
    assert w.index.calls == [50]
    assert len(w.dispatches) == 1
    assert [len(batch) for batch in w.queue.sends] == [50]
    assert w.queue.events == [t.isrc for t in tracks]
    # The write (which ends the jobs) and the send's own transaction (DispatchPending).
    assert w.store.commits == 2
    assert w.statuses() == ["done"] * 50
    assert w.metrics.finished == 50
    for job, t in zip(w.jobs, tracks, strict=True):
        assert w.store.described[job.item_id] == (t.title, t.artist_names)
        assert w.store.links_of(job.item_id) == [
            ItemTrackLink(job.item_id, 0, t.catalog_id, t.isrc)
        ]
        assert t.isrc is not None
        request = w.store.requests[t.isrc]
        assert (request.library_item_id, request.album_id) == (job.item_id, t.album_id)


async def test_track_jobs_skip_what_the_ledger_settled_or_the_index_holds() -> None:
    tracks = [single(n) for n in range(4)]
    w = world(singles=tracks, held={isrc(1_001)})
    w.store.ledger[isrc(1_000)] = "dispatched"

    assert await w.run() == [JobOutcome.DONE] * 4

    assert w.index.calls == [3]
    assert w.store.ledger[isrc(1_001)] == "indexed"
    assert w.queue.events == [isrc(1_002), isrc(1_003)]
    assert {link.item_id for link in w.store.links} == {job.item_id for job in w.jobs}


async def test_nothing_to_request_still_links_and_finishes_without_a_dispatch() -> None:
    w = world(singles=[single(0), single(1)])
    w.store.ledger.update({isrc(1_000): "indexed", isrc(1_001): "requested"})

    assert await w.run() == [JobOutcome.DONE] * 2

    assert (w.index.calls, w.dispatches) == ([], [])
    assert len(w.store.links) == 2
    assert w.statuses() == ["done", "done"]


async def test_a_track_the_catalogue_does_not_know_fails_only_its_own_job() -> None:
    tracks = [single(n) for n in range(3)]
    w = world(singles=tracks, known=[tracks[0], tracks[2]])

    assert await w.run() == [JobOutcome.DONE, JobOutcome.FAILED, JobOutcome.DONE]

    assert w.statuses() == ["done", "failed", "done"]
    missing = w.store.jobs[w.item_of(1)]
    assert missing.last_error == f"track {tracks[1].catalog_id.value} is not in the catalogue"
    assert w.store.links_of(w.item_of(1)) == []
    assert w.queue.events == [isrc(1_000), isrc(1_002)]
    assert (w.metrics.finished, w.metrics.failed) == (2, [True])


async def test_an_unavailable_catalogue_retries_every_job_with_its_own_backoff() -> None:
    w = world(singles=[single(n) for n in range(3)])
    w.catalog.lookup_failure = CatalogUnavailable("TIDAL answered 503")

    assert await w.run() == [JobOutcome.RETRY] * 3

    assert w.statuses() == ["pending"] * 3
    for job in w.jobs:
        row = w.store.jobs[job.item_id]
        assert (row.locked_by, row.last_error) == (None, "TIDAL answered 503")
    run_after = [w.store.jobs[job.item_id].run_after or ENQUEUED for job in w.jobs]
    # Attempts 1, 2 and 3: base, 2 x base and 4 x base after the same moment.
    assert [later - run_after[0] for later in run_after] == [
        timedelta(0),
        JOB_RETRY_BASE,
        3 * JOB_RETRY_BASE,
    ]
    assert (w.store.links, w.store.ledger, w.queue.sends) == ([], {}, [])
    assert w.metrics.failed == [False] * 3
    assert w.reasons == dict.fromkeys((job.item_id for job in w.jobs), "TIDAL answered 503")


async def test_an_unexpected_failure_retries_every_job_and_is_raised() -> None:
    w = world(singles=[single(n) for n in range(2)])
    w.catalog.lookup_failure = RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        await w.run()

    assert [w.store.jobs[job.item_id].last_error for job in w.jobs] == ["a bug", "a bug"]
    assert w.statuses() == ["pending", "pending"]


async def test_a_dispatch_that_breaks_after_the_write_leaves_the_jobs_ended_and_is_raised() -> None:
    tracks = [single(n) for n in range(3)]
    w = world(singles=tracks, known=tracks[:2])
    w.queue.failure = RuntimeError("the dispatch broke")  # after the write committed

    with pytest.raises(RuntimeError, match="the dispatch broke"):
        await w.run()

    # The write ended every job; its requests wait in the ledger for the relay's sweep.
    assert w.statuses() == ["done", "done", "failed"]
    assert w.store.ledger == {isrc(1_000): "requested", isrc(1_001): "requested"}


async def test_a_removed_item_is_skipped() -> None:
    w = world(singles=[single(n) for n in range(3)])
    del w.store.items[w.item_of(1)]
    del w.store.jobs[w.item_of(1)]

    outcomes = await w.run()

    assert outcomes == [JobOutcome.DONE, JobOutcome.GONE, JobOutcome.DONE]
    assert w.catalog.batch_calls == [[single(0).catalog_id, single(2).catalog_id]]
    assert w.queue.events == [isrc(1_000), isrc(1_002)]


async def test_an_item_removed_during_the_batch_is_not_written() -> None:
    w = world(singles=[single(n) for n in range(2)])

    def removed() -> None:
        del w.store.items[w.item_of(0)]
        del w.store.jobs[w.item_of(0)]

    w.store.before_extend = removed

    assert await w.run() == [JobOutcome.LOST_LEASE, JobOutcome.DONE]

    assert {link.item_id for link in w.store.links} == {w.item_of(1)}
    assert w.queue.events == [isrc(1_001)]


async def test_a_job_whose_lease_was_lost_is_not_written_and_its_isrc_passes_on() -> None:
    # Items 0 and 1 share an ISRC; item 0's job was taken over by another worker.
    tracks = [single(0), single(1, isrc_number=1_000), single(2)]
    w = world(singles=tracks)

    def taken_over() -> None:
        w.store.jobs[w.item_of(0)].locked_by = "relay-2"

    w.store.before_extend = taken_over

    assert await w.run() == [JobOutcome.LOST_LEASE, JobOutcome.DONE, JobOutcome.DONE]

    assert w.store.links_of(w.item_of(0)) == []
    assert w.item_of(0) not in w.store.described
    assert w.store.jobs[w.item_of(0)].status == "pending"  # the other worker's to finish
    assert w.store.requests[isrc(1_000)].library_item_id == w.item_of(1)
    assert w.queue.events == [isrc(1_000), isrc(1_002)]


async def test_an_isrc_in_two_items_is_requested_once_and_both_are_linked() -> None:
    tracks = [single(0), single(1), single(2, isrc_number=1_000)]
    w = world(singles=tracks)

    assert await w.run() == [JobOutcome.DONE] * 3

    assert w.index.calls == [2]
    assert w.queue.events == [isrc(1_000), isrc(1_001)]
    # The first in claim order records it.
    assert w.store.requests[isrc(1_000)].library_item_id == w.item_of(0)
    assert w.store.links_of(w.item_of(0)) == [
        ItemTrackLink(w.item_of(0), 0, tracks[0].catalog_id, isrc(1_000))
    ]
    assert w.store.links_of(w.item_of(2)) == [
        ItemTrackLink(w.item_of(2), 0, tracks[2].catalog_id, isrc(1_000))
    ]
    assert not w.store.recorded_twice


async def test_running_jobs_again_records_and_sends_nothing_twice() -> None:
    w = world(albums=[album(30)], singles=[single(n) for n in range(5)])
    assert await w.run() == [JobOutcome.DONE] * 6

    for job in w.jobs:  # as if the jobs had been claimed again (a crash before the end)
        w.store.jobs[job.item_id].status = "pending"
    w.claimed_again()
    assert await w.run() == [JobOutcome.DONE] * 6

    assert len(w.queue.events) == 35
    assert not w.store.recorded_twice
    assert w.statuses() == ["done"] * 6


async def test_with_the_queue_down_the_jobs_are_done_and_the_requests_wait() -> None:
    w = world(singles=[single(n) for n in range(3)])
    w.queue.up = False

    assert await w.run() == [JobOutcome.DONE] * 3

    assert [report.queue_unavailable for report in w.dispatches] == [True]
    assert set(w.store.ledger.values()) == {"requested"}


# -- albums and tracks in one batch -----------------------------------------------------------


async def test_albums_and_tracks_claimed_together_share_one_pipeline_and_one_dedupe() -> None:
    tracks = album(40)
    # The first single shares an ISRC with the album's 30th track; track items come first.
    w = world(albums=[tracks], singles=[single(0, isrc_number=30), single(1)])

    assert await w.run() == [JobOutcome.DONE] * 3

    # The track lookup is the first answer, written alone; the album's pages come after it.
    assert w.index.calls == [2, 39]
    assert w.store.requests[isrc(30)].library_item_id == w.item_of(1)
    assert w.store.links_of(w.item_of(0))[29].isrc == isrc(30)
    assert len(w.queue.events) == 41
    assert set(w.queue.events) == {*[isrc(n) for n in range(1, 41)], isrc(1_001)}
    assert not w.store.recorded_twice


# -- a playlist: one job of many pages, like an album (ADR 0029) ------------------------------

PLAYLIST_ID = CatalogId("5a3b1e00-0000-4000-8000-00000000a001")


def playlist_world(
    tracks: Sequence[CatalogTrack], *, held: set[Isrc] | None = None, videos_per_page: int = 0
) -> World:
    """One playlist item, claimed, whose pages (20 items) hold `tracks` and some videos."""
    w = world(held=held)
    item = LibraryItem(
        id=LibraryItemId(uuid.uuid4()),
        user_id=UserId("user-playlist"),
        kind=LibraryItemKind.PLAYLIST,
        catalog_id=PLAYLIST_ID,
        added_at=ENQUEUED,
    )
    w.store.add(item, worker=WORKER)
    w.jobs.append(ClaimedJob(item.id, attempts=1, enqueued_at=ENQUEUED))
    w.catalog.playlists[PLAYLIST_ID] = (CatalogPlaylist(PLAYLIST_ID, "A playlist"), list(tracks))
    w.catalog.skipped_per_page = videos_per_page
    return w


def playlist_tracks(numbers: Sequence[int]) -> list[CatalogTrack]:
    """Tracks from several albums, one per ISRC number given (a number may repeat)."""
    return [
        CatalogTrack(
            catalog_id=CatalogId(str(600_000 + number)),
            isrc=isrc(number),
            title=f"Listed {number}",
            album_id=CatalogId(str(800_000 + number % 7)),
        )
        for number in numbers
    ]


@pytest.mark.parametrize(
    ("size", "index_calls", "sends"),
    [
        (45, [20, 25], [20, 25]),
        # Thousands of tracks: the first page alone, then writes of 1,000, sends of 500.
        (5_000, [20, 1_000, 1_000, 1_000, 1_000, 980], [20] + [500] * 9 + [480]),
    ],
)
async def test_a_playlists_pages_go_through_the_albums_writes(
    size: int, index_calls: list[int], sends: list[int]
) -> None:
    w = playlist_world(playlist_tracks(range(1, size + 1)))

    assert await w.run() == [JobOutcome.DONE]

    assert w.catalog.playlist_calls == 1
    assert w.catalog.album_calls == 0
    assert w.index.calls == index_calls
    assert [len(batch) for batch in w.queue.sends] == sends
    assert w.queue.events == [isrc(n) for n in range(1, size + 1)]
    assert [link.position for link in w.store.links] == list(range(size))
    assert w.store.described == {w.item_of(0): ("A playlist", ())}
    assert w.statuses() == ["done"]


async def test_a_playlist_that_repeats_an_isrc_requests_it_once_for_its_first_place() -> None:
    tracks = playlist_tracks([1, 2, 3, 2, 4, 1])
    w = playlist_world(tracks)

    assert await w.run() == [JobOutcome.DONE]

    assert w.queue.events == [isrc(1), isrc(2), isrc(3), isrc(4)]
    # Every place is linked, repeats included, so progress counts the playlist as it is.
    assert [link.track_id for link in w.store.links] == [track.catalog_id for track in tracks]
    requested_for = {request.isrc: request.track_id for request in w.queue.accepted}
    assert requested_for[isrc(2)] == tracks[1].catalog_id


async def test_a_playlists_events_name_each_tracks_own_album_never_the_playlist() -> None:
    tracks = playlist_tracks([1, 2, 3])
    w = playlist_world(
        [*tracks, replace(tracks[0], catalog_id=CatalogId("700001"), isrc=isrc(9), album_id=None)]
    )

    await w.run()

    assert [request.album_id for request in w.queue.accepted] == [
        *(track.album_id for track in tracks),
        None,
    ]
    assert all(request.library_item_id == w.item_of(0) for request in w.queue.accepted)


async def test_a_playlists_tracks_already_indexed_or_settled_are_not_requested_again() -> None:
    # What a re-sync sees: the tracks of the last sync are settled in the ledger (or held by the
    # index), and only the ones added since are requested.
    w = playlist_world(playlist_tracks([1, 2, 3]), held={isrc(3)})
    await w.run()
    assert w.queue.events == [isrc(1), isrc(2)]

    w.catalog.playlists[PLAYLIST_ID] = (
        CatalogPlaylist(PLAYLIST_ID, "A playlist"),
        playlist_tracks([1, 2, 3, 5, 6]),
    )
    w.store.jobs[w.item_of(0)].status = "pending"
    w.claimed_again()
    assert await w.run() == [JobOutcome.DONE]

    assert w.queue.events == [isrc(1), isrc(2), isrc(5), isrc(6)]
    assert w.store.recorded_twice == []


async def test_an_unknown_playlist_fails_its_job_for_good_with_the_reason() -> None:
    w = playlist_world([])
    del w.catalog.playlists[PLAYLIST_ID]

    assert await w.run() == [JobOutcome.FAILED]

    assert w.store.jobs[w.item_of(0)].last_error == (
        f"playlist {PLAYLIST_ID.value} is not in the catalogue"
    )
    assert w.queue.sends == []


async def test_a_playlist_with_the_index_down_requests_every_isrc_failing_open() -> None:
    w = playlist_world(playlist_tracks(range(1, 31)), held={isrc(2), isrc(25)})
    w.index.up = False

    assert await w.run() == [JobOutcome.DONE]

    assert w.queue.events == [isrc(n) for n in range(1, 31)]  # held ones too: unknown when down
