"""Plain in-memory fakes of the ports, for unit tests of the use cases only."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Protocol, Self

from application.ports.ingestion_queue import QueueUnavailable
from application.ports.scheduling import DispatchBatch
from application.ports.track_index import IndexedTrack, IndexUnavailable, TrackHit
from application.ports.unit_of_work import LibraryPosition, LibrarySlice
from domain.ingestion import IngestionRequest
from domain.library import IngestionProgress, LibraryItem, LibraryItemKind
from domain.values import Isrc, LibraryItemId, UserId


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        self.current += timedelta(microseconds=1)
        return self.current


class FakeStore:
    """What the fake database holds; survives across units of work."""

    def __init__(self) -> None:
        self.items: dict[LibraryItemId, LibraryItem] = {}
        self.jobs: dict[LibraryItemId, datetime] = {}
        self.commits = 0


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

    async def add(self, item: LibraryItem) -> tuple[LibraryItem, bool]:
        for existing in self.store.items.values():
            if (existing.user_id, existing.kind, existing.catalog_id) == (
                item.user_id,
                item.kind,
                item.catalog_id,
            ):
                return existing, False
        self.store.items = {**self.store.items, item.id: item}
        self.store.jobs = {**self.store.jobs, item.id: item.added_at}
        self.store.commits += 1
        return item, True


class FakeProgress:
    async def for_items(
        self, item_ids: Sequence[LibraryItemId]
    ) -> dict[LibraryItemId, IngestionProgress]:
        return {item_id: IngestionProgress() for item_id in item_ids}


class FakeUnitOfWork:
    """Works on copies and publishes them only on commit, so a rollback leaves no trace."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store

    async def __aenter__(self) -> Self:
        self._items = dict(self.store.items)
        self._jobs = dict(self.store.jobs)
        self.library = FakeLibrary(self._items)
        self.progress = FakeProgress()
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


class StagedUnitOfWork:
    """Base of the scheduling use cases' fake units of work: writes are staged and applied by
    `commit` only, so leaving the block without one writes nothing. Subclasses give it
    `jobs` and `ledger` fakes that append to `staged`; `committed` counts the commits."""

    def __init__(self) -> None:
        self.staged: list[Callable[[], None]] = []
        self.committed = 0

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
        self.committed += 1


class LedgerState(Protocol):
    ledger: dict[Isrc, str]  # ISRC -> state
    requests: dict[Isrc, IngestionRequest]
    recorded_twice: list[Isrc]
    settled_queries: int


class StagedLedger:
    """The ISRC ledger for the scheduling use cases' fakes: reads see what is committed,
    writes are staged until the unit of work commits; recording an ISRC twice is noted."""

    def __init__(self, store: LedgerState, staged: list[Callable[[], None]]) -> None:
        self.store = store
        self.staged = staged

    async def settled(self, isrcs: Sequence[Isrc], *, now: datetime) -> set[Isrc]:
        self.store.settled_queries += 1
        return {i for i in isrcs if i in self.store.ledger}

    async def record_indexed(self, requests: Sequence[IngestionRequest], *, now: datetime) -> None:
        def apply() -> None:
            for request in requests:
                self.store.ledger[request.isrc] = "indexed"

        self.staged.append(apply)

    async def record_requests(
        self, requests: Sequence[IngestionRequest], *, now: datetime
    ) -> list[Isrc]:
        new = [r.isrc for r in requests if r.isrc not in self.store.ledger]

        def apply() -> None:
            for request in requests:
                if request.isrc in self.store.ledger:
                    self.store.recorded_twice.append(request.isrc)
                    continue
                self.store.ledger[request.isrc] = "requested"
                self.store.requests[request.isrc] = request

        self.staged.append(apply)
        return new

    async def claim_dispatchable(self, *, limit: int, now: datetime) -> DispatchBatch:
        due = [r for i, r in self.store.requests.items() if self.store.ledger[i] == "requested"]
        return DispatchBatch(tuple(due[:limit]))

    async def mark_dispatched(self, isrcs: Sequence[Isrc], *, now: datetime) -> None:
        def apply() -> None:
            for i in isrcs:
                self.store.ledger[i] = "dispatched"

        self.staged.append(apply)

    async def defer_dispatch(
        self, isrcs: Sequence[Isrc], *, reason: str, retry_at: datetime, now: datetime
    ) -> None:
        return None


class FakeIndex:
    """The search index: `held` ISRCs are indexed, `up` False refuses, `calls` notes the
    size of each lookup, `before_answer` (sync or async) runs inside each lookup."""

    def __init__(self, held: set[Isrc] | None = None) -> None:
        self.held = held or set()
        self.up = True
        self.calls: list[int] = []  # the size of each call
        self.before_answer: Callable[[], object] | None = None

    async def indexed(self, isrcs: Sequence[Isrc]) -> set[Isrc]:
        self.calls.append(len(isrcs))
        if self.before_answer is not None:
            waited = self.before_answer()
            if asyncio.iscoroutine(waited):
                await waited
        if not self.up:
            raise IndexUnavailable("the index is down")
        return {i for i in isrcs if i in self.held}

    async def upsert(self, track: IndexedTrack, vector: Sequence[float]) -> None:
        return None

    async def search(self, vector: Sequence[float], limit: int) -> list[TrackHit]:
        return []


class FakeQueue:
    """The ingestion queue: `up` False refuses (QueueUnavailable), `failure` is raised as
    it is, `sends` keeps each batch."""

    max_batch = 500

    def __init__(self) -> None:
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
