"""Plain in-memory fakes of the ports, for unit tests of the use cases only."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Collection,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self, cast

from application.errors import TooManyPendingAdds
from application.ports.catalog import (
    READING_FOR,
    AlbumPage,
    CatalogAlbum,
    CatalogItemNotFound,
    CatalogPlaylist,
    CatalogTrack,
    CatalogUnavailable,
    PlaylistPage,
)
from application.ports.ingestion_queue import QueueUnavailable
from application.ports.progress_changes import PendingChanges, ProgressChange
from application.ports.scheduling import (
    ClaimedJob,
    DispatchBatch,
    ItemDescription,
    ItemTrackLink,
)
from application.ports.track_index import (
    IndexedTrack,
    IndexUnavailable,
    TrackHit,
    TrackQuery,
    TrackVectors,
)
from application.ports.unit_of_work import (
    LibraryPosition,
    LibrarySlice,
    StorageUnavailable,
    UnitOfWorkFactory,
)
from domain.fair_share import WaitingJob, claim_order
from domain.ingestion import (
    DEFER_DISPATCH,
    DISPATCH,
    MARK_FAILED,
    MARK_INDEXED,
    RECORD_INDEXED,
    RESCHEDULE_FAILED,
    RESCHEDULE_UNINDEXED,
    IngestionRequest,
    LedgerState,
    LedgerTransition,
    after_request,
    is_settled,
)
from domain.library import IngestionProgress, LibraryItem, LibraryItemKind
from domain.values import CatalogId, Isrc, LibraryItemId, UserId


class FakeClock:
    """The Clock port: moves on by `step` at each reading, and by `advance` when time passes."""

    def __init__(
        self, start: datetime | None = None, *, step: timedelta = timedelta(microseconds=1)
    ) -> None:
        self.current = start or datetime(2026, 1, 1, tzinfo=UTC)
        self.step = step

    def now(self) -> datetime:
        self.current += self.step
        return self.current

    def advance(self, delta: timedelta) -> None:
        self.current += delta


class FakeSeconds:
    """A time source in float seconds (a monotonic clock, or the epoch with `start`), as the
    TIDAL pace, the JWT authenticator and the add quotas read it: it moves only when `sleep`
    is awaited or `now` is set; `slept` notes each wait."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class FakeStore:
    """What the fake database holds; survives across units of work. While `up` is False it
    cannot be reached: adds and units of work raise StorageUnavailable."""

    def __init__(self) -> None:
        self.items: dict[LibraryItemId, LibraryItem] = {}
        self.jobs: dict[LibraryItemId, datetime] = {}
        # The read model, set by tests: each item's progress and the ISRCs of its tracks.
        self.progress: dict[LibraryItemId, IngestionProgress] = {}
        self.isrcs: dict[LibraryItemId, frozenset[Isrc]] = {}
        self.commits = 0
        self.up = True

    def reach(self) -> None:
        if not self.up:
            raise StorageUnavailable("the fake store is down")


class FakeLibrary:
    def __init__(self, items: dict[LibraryItemId, LibraryItem]) -> None:
        self.items = items

    async def get(self, user_id: UserId, item_id: LibraryItemId) -> LibraryItem | None:
        item = self.items.get(item_id)
        return item if item is not None and item.user_id == user_id else None

    async def remove(self, user_id: UserId, item_id: LibraryItemId) -> bool:
        if await self.get(user_id, item_id) is None:
            return False
        del self.items[item_id]
        return True

    async def page(
        self,
        user_id: UserId,
        *,
        kind: LibraryItemKind | None,
        after: LibraryPosition | None,
        limit: int,
    ) -> LibrarySlice:
        owned = sorted(
            (i for i in self.items.values() if i.user_id == user_id and kind in (None, i.kind)),
            key=lambda i: (i.added_at, i.id),
            reverse=True,
        )
        total = len(owned)
        if after is not None:
            owned = [i for i in owned if (i.added_at, i.id) < (after.added_at, after.item_id)]
        return LibrarySlice(tuple(owned[:limit]), len(owned) > limit, total)


class FakeLibraryAdditions:
    """The add's atomic write: item and job land in the store together, as one commit."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store

    async def add(
        self, item: LibraryItem, *, max_pending: int | None = None
    ) -> tuple[LibraryItem, bool]:
        self.store.reach()
        for existing in self.store.items.values():
            if (existing.user_id, existing.kind, existing.catalog_id) == (
                item.user_id,
                item.kind,
                item.catalog_id,
            ):
                return existing, False
        # Every job the fake store holds is pending: nothing here schedules them.
        owners = (self.store.items.get(job) for job in self.store.jobs)
        pending = sum(1 for owner in owners if owner is not None and owner.user_id == item.user_id)
        if max_pending is not None and pending >= max_pending:
            raise TooManyPendingAdds(max_pending)
        self.store.items = {**self.store.items, item.id: item}
        self.store.jobs = {**self.store.jobs, item.id: item.added_at}
        self.store.commits += 1
        return item, True


class FakeProgress:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    async def for_items(
        self, item_ids: Sequence[LibraryItemId]
    ) -> dict[LibraryItemId, IngestionProgress]:
        return {
            item_id: self.store.progress.get(item_id, IngestionProgress()) for item_id in item_ids
        }

    async def touched_items(
        self,
        change: ProgressChange,
        *,
        owners: Collection[UserId],
        item_ids: Collection[LibraryItemId],
    ) -> list[LibraryItem]:
        self.store.reach()
        return [
            item
            for item in self.store.items.values()
            if (item.user_id in owners or item.id in item_ids)
            and (
                change.everything
                or item.id in change.item_ids
                or self.store.isrcs.get(item.id, frozenset()) & change.isrcs
            )
        ]


class FakeProgressChanges:
    """ProgressChanges that tests announce by hand; merged until taken, like the real feed."""

    def __init__(self) -> None:
        self._pending = PendingChanges()
        self._arrived = asyncio.Event()

    def announce(self, change: ProgressChange) -> None:
        self._pending.add(change)
        self._arrived.set()

    async def next(self) -> ProgressChange:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            change = self._pending.take()
            if not change.is_empty:
                return change


class FakeUnitOfWork:
    """Works on copies and publishes them only on commit, so a rollback leaves no trace."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store

    async def __aenter__(self) -> Self:
        self.store.reach()
        self._items = dict(self.store.items)
        self._jobs = dict(self.store.jobs)
        self.library = FakeLibrary(self._items)
        self.progress = FakeProgress(self.store)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def commit(self) -> None:
        self.store.items = self._items
        self.store.jobs = self._jobs
        self.store.commits += 1


class FakeUnitOfWorkFactory:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def __call__(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self.store)


@dataclass
class FakeJob:
    status: str = "pending"
    locked_by: str | None = None
    locked_until: datetime | None = None
    last_error: str | None = None
    run_after: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    attempts: int = 0
    created_at: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    resync_requested: bool = False


@dataclass
class SchedulingStore:
    """What the fake database holds for scheduling; only a unit of work's commit changes it."""

    items: dict[LibraryItemId, LibraryItem] = field(default_factory=dict)
    jobs: dict[LibraryItemId, FakeJob] = field(default_factory=dict)
    described: dict[LibraryItemId, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    link_writes: list[list[ItemTrackLink]] = field(default_factory=list)  # one per statement
    ledger: dict[Isrc, str] = field(default_factory=dict)  # ISRC -> state
    dispatched_at: dict[Isrc, datetime] = field(default_factory=dict)
    next_attempt_at: dict[Isrc, datetime] = field(default_factory=dict)
    dispatch_attempts: dict[Isrc, int] = field(default_factory=dict)
    requests: dict[Isrc, IngestionRequest] = field(default_factory=dict)  # in record order
    recorded_twice: list[Isrc] = field(default_factory=list)
    item_reads: int = 0
    settled_queries: int = 0
    commits: int = 0
    # Lease renewals granted before another worker takes every job over (None: never).
    leases_left: int | None = None
    # Called as a write renews its leases: what happens meanwhile elsewhere.
    before_extend: Callable[[], None] | None = None

    def add(self, item: LibraryItem, *, worker: str) -> None:
        """The item, and its job claimed by `worker`."""
        self.items[item.id] = item
        self.jobs[item.id] = FakeJob(locked_by=worker, attempts=1, created_at=item.added_at)

    def add_pending(self, item: LibraryItem) -> None:
        """The item and its job as the add stores them: pending, due at the item's add."""
        self.items[item.id] = item
        self.jobs[item.id] = FakeJob(run_after=item.added_at, created_at=item.added_at)

    def remove(self, item_id: LibraryItemId) -> None:
        """The item, and its job with it."""
        self.items.pop(item_id, None)
        self.jobs.pop(item_id, None)

    @property
    def links(self) -> list[ItemTrackLink]:
        return [link for write in self.link_writes for link in write]

    def links_of(self, item_id: LibraryItemId) -> list[ItemTrackLink]:
        return [link for link in self.links if link.item_id == item_id]


class FakeSchedulingJobs:
    def __init__(self, store: SchedulingStore, staged: list[Callable[[], None]]) -> None:
        self.store = store
        self.staged = staged

    async def claim(
        self,
        *,
        worker: str,
        limit: int,
        lease: timedelta,
        now: datetime,
        kinds: Collection[LibraryItemKind] | None = None,
        per_user_cap: int | None = None,
    ) -> list[ClaimedJob]:
        def of_kind(item_id: LibraryItemId) -> bool:
            return kinds is None or self.store.items[item_id].kind in kinds

        pending = {
            item_id: job
            for item_id, job in self.store.jobs.items()
            if job.status == "pending" and of_kind(item_id)
        }
        under_way = Counter(
            self.store.items[item_id].user_id
            for item_id, job in pending.items()
            if job.locked_until is not None and job.locked_until >= now
        )
        due = [
            WaitingJob(item_id, self.store.items[item_id].user_id, job.created_at)
            for item_id, job in pending.items()
            if job.run_after <= now and (job.locked_until is None or job.locked_until < now)
        ]
        claimed = [
            job.item_id
            for job in claim_order(
                due, scheduling=under_way, per_user_cap=per_user_cap, limit=limit
            )
        ]

        def apply() -> None:
            for item_id in claimed:
                job = self.store.jobs[item_id]
                job.locked_by, job.locked_until = worker, now + lease
                job.attempts += 1

        self.staged.append(apply)
        return [
            ClaimedJob(
                item_id,
                attempts=self.store.jobs[item_id].attempts + 1,
                enqueued_at=self.store.jobs[item_id].created_at,
            )
            for item_id in claimed
        ]

    async def reopen_failed(
        self, *, now: datetime, item_ids: Sequence[LibraryItemId] | None = None, limit: int
    ) -> list[LibraryItemId]:
        failed = [
            item_id
            for item_id, job in self.store.jobs.items()
            if job.status == "failed" and (item_ids is None or item_id in item_ids)
        ][:limit]

        def apply() -> None:
            for item_id in failed:
                job = self.store.jobs[item_id]
                job.status, job.attempts, job.run_after = "pending", 0, now
                job.locked_by = job.locked_until = None

        self.staged.append(apply)
        return failed

    async def items(self, item_ids: Sequence[LibraryItemId]) -> dict[LibraryItemId, LibraryItem]:
        self.store.item_reads += 1
        return {i: self._described(self.store.items[i]) for i in item_ids if i in self.store.items}

    def _described(self, item: LibraryItem) -> LibraryItem:
        if item.id not in self.store.described:
            return item
        title, artist_names = self.store.described[item.id]
        return replace(item, title=title, artist_names=artist_names)

    async def extend_leases(
        self, item_ids: Sequence[LibraryItemId], *, worker: str, lease: timedelta, now: datetime
    ) -> set[LibraryItemId]:
        if self.store.before_extend is not None:
            self.store.before_extend()
        if self.store.leases_left is not None:
            if self.store.leases_left <= 0:
                for job in self.store.jobs.values():
                    job.locked_by = "another-worker"
            self.store.leases_left -= 1
        ours = {
            i
            for i in item_ids
            if (job := self.store.jobs.get(i)) is not None
            and job.locked_by == worker
            and job.status == "pending"
        }

        def apply() -> None:
            for item_id in ours:
                if (job := self.store.jobs.get(item_id)) is not None:
                    job.locked_until = now + lease

        self.staged.append(apply)
        return ours

    async def resync(
        self,
        item_ids: Sequence[LibraryItemId] | None,
        *,
        kinds: Collection[LibraryItemKind],
        now: datetime,
    ) -> list[LibraryItemId]:
        wanted = set(self.store.jobs) if item_ids is None else set(item_ids)
        chosen = {
            item_id: job
            for item_id, job in self.store.jobs.items()
            if item_id in wanted and self.store.items[item_id].kind in kinds
        }
        resynced = [item_id for item_id, job in chosen.items() if job.status != "pending"]
        running = [i for i, job in chosen.items() if job.status == "pending" and job.locked_by]

        def apply() -> None:
            self._put_back(resynced, now)
            for item_id in running:
                self.store.jobs[item_id].resync_requested = True

        self.staged.append(apply)
        return resynced

    async def describe_items(self, descriptions: Sequence[ItemDescription]) -> None:
        def apply() -> None:
            for d in descriptions:
                self.store.described[d.item_id] = (d.title, tuple(d.artist_names))

        self.staged.append(apply)

    async def finish(
        self, item_ids: Sequence[LibraryItemId], *, worker: str, now: datetime
    ) -> None:
        done = list(item_ids)
        self.staged.append(lambda: self._settle(done, worker, "done", None, now=now))

    async def give_up(
        self, reasons: Mapping[LibraryItemId, str], *, worker: str, now: datetime
    ) -> None:
        failed = dict(reasons)

        def apply() -> None:
            for item_id, reason in failed.items():
                self._settle([item_id], worker, "failed", reason)

        self.staged.append(apply)

    async def retry_later(
        self,
        run_after: Mapping[LibraryItemId, datetime],
        *,
        worker: str,
        reason: str,
        now: datetime,
    ) -> None:
        retries = dict(run_after)

        def apply() -> None:
            for item_id, when in retries.items():
                job = self.store.jobs.get(item_id)
                if job is not None and job.locked_by == worker:
                    job.locked_by, job.locked_until = None, None
                    job.last_error, job.run_after = reason, when

        self.staged.append(apply)

    async def release(self, item_ids: Sequence[LibraryItemId], *, worker: str) -> None:
        def apply() -> None:
            for item_id in item_ids:
                job = self.store.jobs.get(item_id)
                if job is not None and job.locked_by == worker and job.status == "pending":
                    job.locked_by, job.locked_until = None, None

        self.staged.append(apply)

    def _settle(
        self,
        item_ids: Sequence[LibraryItemId],
        worker: str,
        status: str,
        error: str | None,
        *,
        now: datetime | None = None,
    ) -> None:
        again = []
        for item_id in item_ids:
            job = self.store.jobs.get(item_id)
            if job is not None and job.locked_by == worker:
                job.status, job.last_error = status, error
                job.locked_by, job.locked_until = None, None
                if status == "done" and job.resync_requested:
                    again.append(item_id)
                job.resync_requested = False
        if again and now is not None:
            self._put_back(again, now)

    def _put_back(self, item_ids: Sequence[LibraryItemId], now: datetime) -> None:
        """Pending again as a new job, due `now`, with the item's links gone (a re-sync)."""
        for item_id in item_ids:
            job = self.store.jobs[item_id]
            job.status, job.attempts, job.last_error = "pending", 0, None
            job.run_after, job.locked_by, job.locked_until = now, None, None
            job.resync_requested = False
        gone = set(item_ids)
        self.store.link_writes = [
            [link for link in write if link.item_id not in gone] for write in self.store.link_writes
        ]


class FakeIsrcLedger:
    """The ISRC ledger, moving its rows by the domain's rules (domain/ingestion.py) as the
    PostgreSQL ledger does: reads see what is committed, writes are staged until the unit of
    work commits. Asking to record an ISRC that is settled when the write applies is noted in
    `recorded_twice`. A row put in `ledger` by a test as dispatched, with no `dispatched_at`,
    reads as dispatched just now."""

    def __init__(self, store: SchedulingStore, staged: list[Callable[[], None]]) -> None:
        self.store = store
        self.staged = staged

    def _state(self, isrc: Isrc) -> LedgerState | None:
        state = self.store.ledger.get(isrc)
        return LedgerState(state) if state is not None else None

    def _settled(self, isrc: Isrc, now: datetime) -> bool:
        return is_settled(self._state(isrc), self.store.dispatched_at.get(isrc, now), now)

    def _move(self, transition: LedgerTransition, isrcs: Sequence[Isrc]) -> list[Isrc]:
        """Apply `transition` to the rows of `isrcs`; the ISRCs it moved."""
        moved = []
        for isrc in isrcs:
            before = self._state(isrc)
            after = transition.applied_to(before)
            if after is not None and before in transition.sources | {None}:
                self.store.ledger[isrc] = after
                moved.append(isrc)
        return moved

    async def settled(self, isrcs: Sequence[Isrc], *, now: datetime) -> set[Isrc]:
        self.store.settled_queries += 1
        return {isrc for isrc in isrcs if self._settled(isrc, now)}

    async def record_indexed(self, requests: Sequence[IngestionRequest], *, now: datetime) -> None:
        isrcs = [request.isrc for request in requests]
        self.staged.append(lambda: self._move(RECORD_INDEXED, isrcs))

    async def record_requests(
        self, requests: Sequence[IngestionRequest], *, now: datetime
    ) -> list[Isrc]:
        new = list(dict.fromkeys(r.isrc for r in requests if not self._settled(r.isrc, now)))

        def apply() -> None:
            for request in requests:
                isrc = request.isrc
                if self._settled(isrc, now):
                    self.store.recorded_twice.append(isrc)
                    continue
                self.store.ledger[isrc] = after_request(
                    self._state(isrc), self.store.dispatched_at.get(isrc), now
                )
                self.store.dispatched_at.pop(isrc, None)
                self.store.next_attempt_at[isrc] = now
                self.store.dispatch_attempts[isrc] = 0
                self.store.requests[isrc] = request

        self.staged.append(apply)
        return new

    async def link_tracks(self, links: Sequence[ItemTrackLink]) -> None:
        if not links:
            return
        written = list(links)
        self.staged.append(lambda: self.store.link_writes.append(written))

    async def claim_dispatchable(self, *, limit: int, now: datetime) -> DispatchBatch:
        due = [
            request
            for isrc, request in self.store.requests.items()
            if self._state(isrc) in DISPATCH.sources
            and self.store.next_attempt_at.get(isrc, now) <= now
        ]
        due.sort(key=lambda request: self.store.next_attempt_at.get(request.isrc, now))
        due = due[:limit]
        attempts = [self.store.dispatch_attempts.get(request.isrc, 0) for request in due]
        return DispatchBatch(tuple(due), most_attempts=max(attempts, default=0))

    async def mark_dispatched(self, isrcs: Sequence[Isrc], *, now: datetime) -> None:
        def apply() -> None:
            for isrc in self._move(DISPATCH, isrcs):
                self.store.dispatched_at[isrc] = now
                self.store.dispatch_attempts[isrc] = self.store.dispatch_attempts.get(isrc, 0) + 1

        self.staged.append(apply)

    async def defer_dispatch(
        self, isrcs: Sequence[Isrc], *, reason: str, retry_at: datetime, now: datetime
    ) -> None:
        def apply() -> None:
            for isrc in self._move(DEFER_DISPATCH, isrcs):
                self.store.next_attempt_at[isrc] = retry_at
                self.store.dispatch_attempts[isrc] = self.store.dispatch_attempts.get(isrc, 0) + 1

        self.staged.append(apply)

    async def mark_indexed(self, isrc: Isrc, *, now: datetime) -> None:
        self.staged.append(lambda: self._move(MARK_INDEXED, [isrc]))

    async def mark_failed(self, isrc: Isrc, *, reason: str, now: datetime) -> None:
        self.staged.append(lambda: self._move(MARK_FAILED, [isrc]))

    async def in_flight(self, *, limit: int) -> list[IngestionRequest]:
        dispatched = [
            request
            for isrc, request in self.store.requests.items()
            if self._state(isrc) is LedgerState.DISPATCHED
        ]
        return dispatched[:limit]

    async def reset_to_requested(
        self, *, include_unindexed: bool, limit: int, now: datetime
    ) -> int:
        transition = RESCHEDULE_UNINDEXED if include_unindexed else RESCHEDULE_FAILED
        chosen = sorted(
            (isrc for isrc in self.store.ledger if self._state(isrc) in transition.sources),
            key=lambda isrc: isrc.value,
        )[:limit]

        def apply() -> None:
            for isrc in self._move(transition, chosen):
                self.store.dispatched_at.pop(isrc, None)
                self.store.next_attempt_at[isrc] = now
                self.store.dispatch_attempts[isrc] = 0

        self.staged.append(apply)
        return len(chosen)

    async def reopen_failed_tracks(
        self, item_ids: Sequence[LibraryItemId], *, now: datetime
    ) -> int:
        carried = {link.isrc for link in self.store.links if link.item_id in item_ids}
        chosen = [
            isrc
            for isrc in self.store.ledger
            if isrc in carried and self._state(isrc) in RESCHEDULE_FAILED.sources
        ]

        def apply() -> None:
            for isrc in self._move(RESCHEDULE_FAILED, chosen):
                self.store.dispatched_at.pop(isrc, None)
                self.store.next_attempt_at[isrc] = now
                self.store.dispatch_attempts[isrc] = 0

        self.staged.append(apply)
        return len(chosen)


class SchedulingUnitOfWork:
    """The scheduling side of the unit of work: writes are staged and applied by `commit`
    only, so leaving the block without one writes nothing."""

    def __init__(self, store: SchedulingStore) -> None:
        self.store = store
        self.staged: list[Callable[[], None]] = []
        self.jobs = FakeSchedulingJobs(store, self.staged)
        self.ledger = FakeIsrcLedger(store, self.staged)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def commit(self) -> None:
        for apply in self.staged:
            apply()
        self.staged.clear()
        self.store.commits += 1


def scheduling_uow_factory(store: SchedulingStore) -> UnitOfWorkFactory:
    # The fake speaks the two parts of the unit of work that scheduling uses.
    return cast(UnitOfWorkFactory, lambda: SchedulingUnitOfWork(store))


class FakeIndex:
    """The search index: `held` ISRCs are indexed (upserts add theirs), `up` False refuses,
    `calls` notes the size of each lookup, `before_answer` (sync or async) runs inside each
    lookup. Search ranks the upserted tracks by dot product, as cosine on unit vectors."""

    def __init__(self, held: set[Isrc] | None = None) -> None:
        self.held = held or set()
        self.up = True
        self.calls: list[int] = []  # the size of each call
        self.before_answer: Callable[[], object] | None = None
        self.points: dict[Isrc, tuple[IndexedTrack, TrackVectors]] = {}
        self.stale: list[IndexedTrack] = []
        self.searches: list[TrackQuery] = []

    async def indexed(self, isrcs: Sequence[Isrc]) -> set[Isrc]:
        self.calls.append(len(isrcs))
        if self.before_answer is not None:
            waited = self.before_answer()
            if asyncio.iscoroutine(waited):
                await waited
        self._reach()
        return {i for i in isrcs if i in self.held}

    async def upsert(self, track: IndexedTrack, vectors: TrackVectors) -> None:
        self._reach()
        self.points[track.isrc] = (track, vectors)
        self.held.add(track.isrc)

    async def prepare(self, vectorise: Callable[[IndexedTrack], TrackVectors]) -> int:
        """Rewrites the `stale` tracks (points written with other vectors) with `vectorise`."""
        self._reach()
        for track in self.stale:
            self.points[track.isrc] = (track, vectorise(track))
            self.held.add(track.isrc)
        rewritten, self.stale = len(self.stale), []
        return rewritten

    async def search(self, query: TrackQuery, limit: int) -> list[TrackHit]:
        """Dense only: the dot product. Hybrid: each ranking cut at its floor, fused by
        reciprocal rank (1 / (rank + 1) from each ranking a track is in)."""
        self._reach()
        self.searches.append(query)
        tracks = [track for track, _ in self.points.values()]
        dense = {
            track.isrc: sum(a * b for a, b in zip(query.dense, vectors.dense, strict=True))
            for track, vectors in self.points.values()
        }
        scores = _above(dense, query.dense_floor)
        if query.lexical is not None:
            words = dict(zip(query.lexical.indices, query.lexical.values, strict=True))
            lexical = {
                track.isrc: sum(
                    words.get(i, 0.0) * v
                    for i, v in zip(vectors.lexical.indices, vectors.lexical.values, strict=True)
                )
                for track, vectors in self.points.values()
            }
            fused: dict[Isrc, float] = {}
            for ranking in (scores, _above(lexical, query.lexical_floor)):
                ordered = sorted(ranking, key=lambda isrc: -ranking[isrc])
                for rank, isrc in enumerate(ordered, start=1):
                    fused[isrc] = fused.get(isrc, 0.0) + 1 / (rank + 1)
            scores = fused
        hits = [
            TrackHit(
                isrc=track.isrc,
                track_id=track.track_id,
                title=track.title,
                artist_names=track.artist_names,
                score=scores[track.isrc],
            )
            for track in tracks
            if track.isrc in scores
        ]
        return sorted(hits, key=lambda hit: hit.score, reverse=True)[:limit]

    def _reach(self) -> None:
        if not self.up:
            raise IndexUnavailable("the index is down")


class FakeQueue:
    """The ingestion queue: `up` False refuses (QueueUnavailable), `failure` is raised as
    it is, `sends` keeps each batch, `accepted` every request in order."""

    def __init__(self, max_batch: int = 500) -> None:
        self.max_batch = max_batch
        self.sends: list[list[IngestionRequest]] = []
        self.up = True
        self.failure: Exception | None = None  # raised as it is, unlike a refusal

    async def send(self, requests: Sequence[IngestionRequest]) -> None:
        if self.failure is not None:
            raise self.failure
        if not self.up:
            raise QueueUnavailable("the queue is down")
        self.sends.append(list(requests))

    @property
    def events(self) -> list[Isrc]:
        return [request.isrc for batch in self.sends for request in batch]

    @property
    def accepted(self) -> list[IngestionRequest]:
        return [request for batch in self.sends for request in batch]


class FakeCatalog:
    """The catalogue, serving the albums and playlists (header and tracks) and standalone tracks
    given, in pages of `page_size`, each page reporting `skipped_per_page` items that are not
    tracks. A playlist may be changed between calls (`playlists[id] = (header, tracks)`).

    It notes its calls (`album_calls`, `playlist_calls`, `track_calls`, `batch_calls`, and
    `events` in order);
    `up` False refuses every call (CatalogUnavailable); `fail_before_page` makes that page
    time out; a page in `gate_before_page` waits for its event first."""

    def __init__(
        self,
        albums: Iterable[tuple[CatalogAlbum, Sequence[CatalogTrack]]] = (),
        tracks: Iterable[CatalogTrack] = (),
        *,
        page_size: int = 20,
        skipped_per_page: int = 0,
        playlists: Iterable[tuple[CatalogPlaylist, Sequence[CatalogTrack]]] = (),
    ) -> None:
        self.albums = {header.catalog_id: (header, list(items)) for header, items in albums}
        self.playlists = {p.catalog_id: (p, list(items)) for p, items in playlists}
        self.known_tracks = {
            track.catalog_id: track
            for _, items in [*self.albums.values(), *self.playlists.values()]
            for track in items
            if track.catalog_id is not None
        }
        self.known_tracks.update((track.catalog_id, track) for track in tracks)
        self.page_size = page_size
        self.skipped_per_page = skipped_per_page
        self.up = True
        self.events: list[str] = []
        self.album_calls = 0
        self.playlist_calls = 0
        self.track_calls: list[CatalogId] = []
        self.batch_calls: list[list[CatalogId]] = []
        self.read_for: list[UserId | None] = []  # READING_FOR at each lookup and page
        self.fail_before_page: int | None = None
        self.gate_before_page: dict[int, asyncio.Event] = {}

    async def track(self, track_id: CatalogId) -> CatalogTrack:
        self.track_calls.append(track_id)
        self._reach()
        if track_id not in self.known_tracks:
            raise CatalogItemNotFound("track", track_id.value)
        return self.known_tracks[track_id]

    async def tracks(self, track_ids: Sequence[CatalogId]) -> dict[CatalogId, CatalogTrack]:
        self.batch_calls.append(list(track_ids))
        self.read_for.append(READING_FOR.get())
        self._reach()
        return {tid: self.known_tracks[tid] for tid in track_ids if tid in self.known_tracks}

    async def album_pages(self, album_id: CatalogId) -> AsyncIterator[AlbumPage]:
        self.album_calls += 1
        self._reach()
        if album_id not in self.albums:
            raise CatalogItemNotFound("album", album_id.value)
        header, items = self.albums[album_id]
        async with contextlib.aclosing(self._chunks(items)) as chunks:
            async for chunk, skipped, last in chunks:
                yield AlbumPage(album=header, tracks=chunk, skipped_items=skipped, is_last=last)

    async def playlist_pages(self, playlist_id: CatalogId) -> AsyncIterator[PlaylistPage]:
        self.playlist_calls += 1
        self._reach()
        if playlist_id not in self.playlists:
            raise CatalogItemNotFound("playlist", playlist_id.value)
        header, items = self.playlists[playlist_id]
        async with contextlib.aclosing(self._chunks(items)) as chunks:
            async for chunk, skipped, last in chunks:
                yield PlaylistPage(
                    playlist=header, tracks=chunk, skipped_items=skipped, is_last=last
                )

    async def _chunks(
        self, items: Sequence[CatalogTrack]
    ) -> AsyncGenerator[tuple[tuple[CatalogTrack, ...], int, bool], None]:
        size = self.page_size
        chunks = [items[start : start + size] for start in range(0, len(items), size)] or [[]]
        try:
            for number, chunk in enumerate(chunks, start=1):
                self.events.append(f"catalogue asked for page {number}")
                self.read_for.append(READING_FOR.get())
                if number in self.gate_before_page:
                    await self.gate_before_page[number].wait()
                self._reach()  # it may fail between pages too
                if self.fail_before_page == number:
                    raise CatalogUnavailable(f"page {number} timed out")
                yield tuple(chunk), self.skipped_per_page, number == len(chunks)
        finally:
            self.events.append("catalogue stream closed")

    def _reach(self) -> None:
        if not self.up:
            raise CatalogUnavailable("the fake catalogue is down")


def _above(scores: dict[Isrc, float], floor: float | None) -> dict[Isrc, float]:
    return {isrc: score for isrc, score in scores.items() if floor is None or score > floor}
