"""What the relay and the scheduler need from storage: the outbox jobs, the ISRC ledger and the
link between library items and their tracks. All of it is used through the UnitOfWork, so every
method runs inside the caller's transaction and commits with it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from domain.ingestion import IngestionRequest
from domain.library import LibraryItem, LibraryItemKind
from domain.values import CatalogId, Isrc, LibraryItemId


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    item_id: LibraryItemId
    attempts: int  # including this one
    enqueued_at: datetime


@dataclass(frozen=True, slots=True)
class ItemDescription:
    """An item's title and artists, as the catalogue names them."""

    item_id: LibraryItemId
    title: str
    artist_names: Sequence[str]


class SchedulingJobs(Protocol):
    """The outbox seen from the relay. A claim is a lease: the claimer owns the job until the
    lease runs out, so a relay that dies leaves it to be claimed again, never lost."""

    async def claim(
        self,
        *,
        worker: str,
        limit: int,
        lease: timedelta,
        now: datetime,
        kind: LibraryItemKind | None = None,
    ) -> list[ClaimedJob]:
        """Take up to `limit` due, unleased jobs (FOR UPDATE SKIP LOCKED: concurrent claimers
        never take the same job), oldest due first, and lease them to `worker`. With `kind`,
        only jobs whose item is of that kind."""
        ...

    async def extend_lease(
        self, item_id: LibraryItemId, *, worker: str, lease: timedelta, now: datetime
    ) -> bool:
        """Keep the lease alive during long work; False when the job is no longer ours (it was
        removed with its item, or the lease ran out and another worker took it)."""
        ...

    async def extend_leases(
        self, item_ids: Sequence[LibraryItemId], *, worker: str, lease: timedelta, now: datetime
    ) -> set[LibraryItemId]:
        """`extend_lease` for many jobs at once (one statement): the ids whose lease was renewed,
        so still ours; the others were removed or taken over and must not be written."""
        ...

    async def finish(self, item_id: LibraryItemId, *, worker: str, now: datetime) -> None: ...

    async def finish_many(
        self, item_ids: Sequence[LibraryItemId], *, worker: str, now: datetime
    ) -> None:
        """Mark the jobs done and give up their leases, in one statement; a job that is no
        longer `worker`'s is left alone."""
        ...

    async def give_up(
        self, item_id: LibraryItemId, *, worker: str, reason: str, now: datetime
    ) -> None:
        """A permanent failure: the job will not run again and the item shows FAILED."""
        ...

    async def retry_later(
        self,
        item_id: LibraryItemId,
        *,
        worker: str,
        reason: str,
        run_after: datetime,
        now: datetime,
    ) -> None: ...

    async def release(self, item_ids: Sequence[LibraryItemId], *, worker: str) -> None:
        """Hand leased jobs back at once (on shutdown) instead of letting the lease run out."""
        ...

    async def item(self, item_id: LibraryItemId) -> LibraryItem | None:
        """The job's library item, whoever owns it; None once removed."""
        ...

    async def items(self, item_ids: Sequence[LibraryItemId]) -> dict[LibraryItemId, LibraryItem]:
        """The jobs' library items (one query); a removed item is absent from the answer."""
        ...

    async def describe_item(
        self, item_id: LibraryItemId, *, title: str, artist_names: Sequence[str]
    ) -> None:
        """Fill in the item's title and artists from the catalogue."""
        ...

    async def describe_items(self, descriptions: Sequence[ItemDescription]) -> None:
        """`describe_item` for many items at once; an empty sequence does nothing."""
        ...


class LinkOutcome(StrEnum):
    LINKED = "linked"  # the track's ISRC is in the ledger
    NO_ISRC = "no_isrc"  # skipped: the catalogue gave no usable ISRC


@dataclass(frozen=True, slots=True)
class ItemTrackLink:
    position: int  # in album order, from 0
    track_id: CatalogId
    isrc: Isrc | None


@dataclass(frozen=True, slots=True)
class DispatchBatch:
    """Ledger rows claimed for one send; they are marked dispatched or deferred in the same
    transaction that claimed them."""

    requests: tuple[IngestionRequest, ...]
    most_attempts: int = 0  # the highest number of earlier send attempts among them


class IsrcLedger(Protocol):
    """One row per ISRC ever requested: requested -> dispatched -> indexed (or failed). The ISRC
    is the key, so concurrent jobs containing the same ISRC produce one row and one dispatch."""

    async def settled(self, isrcs: Sequence[Isrc], *, now: datetime) -> set[Isrc]:
        """The ISRCs that need no new request: indexed, or requested/dispatched within the
        schedule window (24 h)."""
        ...

    async def record_requests(
        self, requests: Sequence[IngestionRequest], *, now: datetime
    ) -> list[Isrc]:
        """Add rows in state `requested`; an ISRC that is already settled is left alone (whoever
        recorded it first wins). Returns the ISRCs this call recorded."""
        ...

    async def record_indexed(self, requests: Sequence[IngestionRequest], *, now: datetime) -> None:
        """Note ISRCs the index already holds, so they are never requested."""
        ...

    async def link_tracks(self, item_id: LibraryItemId, links: Sequence[ItemTrackLink]) -> None:
        """Tie the item's tracks (and their ISRCs) to it; idempotent per position."""
        ...

    async def link_many(self, links: Mapping[LibraryItemId, Sequence[ItemTrackLink]]) -> None:
        """`link_tracks` for many items at once (one statement); idempotent per item and
        position."""
        ...

    async def claim_dispatchable(self, *, limit: int, now: datetime) -> DispatchBatch:
        """Lock up to `limit` rows in state `requested` that are due (FOR UPDATE SKIP LOCKED)."""
        ...

    async def mark_dispatched(self, isrcs: Sequence[Isrc], *, now: datetime) -> None: ...

    async def defer_dispatch(
        self, isrcs: Sequence[Isrc], *, reason: str, retry_at: datetime, now: datetime
    ) -> None: ...

    async def mark_indexed(self, isrc: Isrc, *, now: datetime) -> None: ...

    async def in_flight(self, *, limit: int) -> list[IngestionRequest]:
        """Requests dispatched but neither indexed nor failed: what a local queue must run
        again after a restart."""
        ...

    async def reset_to_requested(
        self, *, include_unindexed: bool, limit: int, now: datetime
    ) -> int:
        """Put up to `limit` failed rows (and, with `include_unindexed`, dispatched ones) back to
        `requested`, due now, so the relay dispatches them again. Returns how many."""
        ...

    async def mark_failed(self, isrc: Isrc, *, reason: str, now: datetime) -> None: ...
