"""One business transaction over the library, the scheduling jobs, the ledger and the read
models. The add itself is not made through it: see LibraryAdditions."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from application.errors import DependencyUnavailable
from application.ports.progress_changes import ProgressChange
from application.ports.scheduling import IsrcLedger, SchedulingJobs
from domain.library import IngestionProgress, LibraryItem, LibraryItemKind
from domain.values import LibraryItemId, UserId


@dataclass(frozen=True, slots=True)
class LibraryPosition:
    """Where a page of a library starts: keyset over (added_at, id), newest first."""

    added_at: datetime
    item_id: LibraryItemId


@dataclass(frozen=True, slots=True)
class LibrarySlice:
    items: tuple[LibraryItem, ...]
    has_more: bool
    total_count: int


class StorageUnavailable(DependencyUnavailable):
    """The database cannot be reached or lost the connection mid-transaction. Nothing of the
    transaction was committed; retrying later is safe."""


class LibraryRepository(Protocol):
    """The users' library items. Every read and write is scoped to one owner: another user's item
    is invisible, exactly like an item that does not exist. Nothing is committed here; the unit
    of work commits."""

    async def get(self, user_id: UserId, item_id: LibraryItemId) -> LibraryItem | None: ...

    async def remove(self, user_id: UserId, item_id: LibraryItemId) -> bool:
        """Delete the item and, with it, its scheduling job; True when it existed and belonged
        to the user."""
        ...

    async def page(
        self,
        user_id: UserId,
        *,
        kind: LibraryItemKind | None,
        after: LibraryPosition | None,
        limit: int,
    ) -> LibrarySlice:
        """Newest first; `after` excludes everything up to and including that position, so a
        cursor stays valid and stable when newer items are inserted."""
        ...


class ProgressReader(Protocol):
    """Read model of ingestion progress per library item."""

    async def for_items(
        self, item_ids: Sequence[LibraryItemId]
    ) -> dict[LibraryItemId, IngestionProgress]:
        """One entry for every id asked for; unknown ids get an empty PENDING progress."""
        ...

    async def touched_items(
        self,
        change: ProgressChange,
        *,
        owners: Collection[UserId],
        item_ids: Collection[LibraryItemId],
    ) -> list[LibraryItem]:
        """The items that `change` may have moved (named by it, or holding one of its ISRCs;
        with `everything`, all) among those watched: owned by one of `owners`, or one of
        `item_ids`. Items that no longer exist are not answered."""
        ...


class UnitOfWork(Protocol):
    """A transaction: everything done through it is committed together by `commit()`, and
    rolled back when the block ends without a commit (or with an exception). Losing the
    database, on entry or inside the block, raises StorageUnavailable."""

    library: LibraryRepository
    progress: ProgressReader
    jobs: SchedulingJobs
    ledger: IsrcLedger

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
