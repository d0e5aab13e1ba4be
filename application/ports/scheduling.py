"""What the relay and the scheduler need from storage: the outbox jobs, the ISRC ledger and the
link between library items and their tracks. All of it is used through the UnitOfWork, so every
method runs inside the caller's transaction and commits with it."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
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
        kinds: Collection[LibraryItemKind] | None = None,
        per_user_cap: int | None = None,
    ) -> list[ClaimedJob]:
        """Take up to `limit` due, unleased jobs (concurrent claimers never take the same
        job) and lease them to `worker`, in the fair order of `domain.fair_share.claim_order`
        (ADR 0028): round-robin between the items' owners, each owner's in the order they were
        added, and none that would give its owner `per_user_cap` or more jobs under way (None:
        no cap). With `kinds`, only jobs whose item is of one of those kinds, and only those
        count as under way (albums and playlists are claimed together, ADR 0029). Answers them
        in that order."""
        ...

    async def extend_leases(
        self, item_ids: Sequence[LibraryItemId], *, worker: str, lease: timedelta, now: datetime
    ) -> set[LibraryItemId]:
        """Renew the leases of `worker`'s pending jobs (one statement) and answer the ids whose
        lease was renewed, so still ours; the others were removed with their item or taken
        over by another worker, and must not be written. Also the check, inside a write
        transaction, that the jobs are still ours."""
        ...

    async def finish(
        self, item_ids: Sequence[LibraryItemId], *, worker: str, now: datetime
    ) -> None:
        """Mark the jobs done and give up their leases (one statement); a job that is no
        longer `worker`'s is left alone. A job whose item asked to be read again while it ran
        (see `resync`) is pending again instead, due `now`, its links removed and the relays
        woken. An empty sequence does nothing."""
        ...

    async def give_up(
        self, reasons: Mapping[LibraryItemId, str], *, worker: str, now: datetime
    ) -> None:
        """Permanent failures, each with its reason: the jobs will not run again and their
        items show FAILED. A job that is no longer `worker`'s is left alone."""
        ...

    async def retry_later(
        self,
        run_after: Mapping[LibraryItemId, datetime],
        *,
        worker: str,
        reason: str,
        now: datetime,
    ) -> None:
        """Transient failures: each job runs again at its own `run_after`, its lease given up
        and `reason` kept as its last error. A job that is no longer `worker`'s is left alone."""
        ...

    async def release(self, item_ids: Sequence[LibraryItemId], *, worker: str) -> None:
        """Hand leased jobs back at once (on shutdown) instead of letting the lease run out."""
        ...

    async def reopen_failed(
        self, *, now: datetime, item_ids: Sequence[LibraryItemId] | None = None, limit: int
    ) -> list[LibraryItemId]:
        """Put up to `limit` failed jobs (of `item_ids`, or any) back to pending, due `now`
        with their attempts reset, and wake the relays; their last error stays until they
        end again. Answers the jobs reopened. A job that is not failed is left alone."""
        ...

    async def items(self, item_ids: Sequence[LibraryItemId]) -> dict[LibraryItemId, LibraryItem]:
        """The jobs' library items, whoever owns them (one query); a removed item is absent
        from the answer."""
        ...

    async def resync(
        self,
        item_ids: Sequence[LibraryItemId] | None,
        *,
        kinds: Collection[LibraryItemKind],
        now: datetime,
    ) -> list[LibraryItemId]:
        """Read items that change again (ADR 0029): the ended (done or failed) jobs of the
        items of `kinds` among `item_ids` (None: every such item) are pending again, due `now`,
        their attempts and error cleared and their leases gone, and the items' track links are
        removed; the relays are woken when the transaction commits. A job still pending is left
        as it is, since it will read the item as it is then; unless a worker has claimed it,
        whose run may have read the changed part already: then its `finish` puts it back.
        Answers the items put back now."""
        ...

    async def describe_items(self, descriptions: Sequence[ItemDescription]) -> None:
        """Fill in the items' titles and artists from the catalogue; an empty sequence does
        nothing."""
        ...


@dataclass(frozen=True, slots=True)
class ItemTrackLink:
    """One track of a library item, at its place in the item (an album's order; 0 for a
    track item), with its ISRC when the catalogue gave a usable one."""

    item_id: LibraryItemId
    position: int  # in album order, from 0
    track_id: CatalogId
    isrc: Isrc | None
    available: bool = True  # False: listed by the item, but the catalogue could not give it


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

    async def link_tracks(self, links: Sequence[ItemTrackLink]) -> None:
        """Tie tracks (and their ISRCs) to their items, any number of items in one statement;
        idempotent per item and position."""
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

    async def reopen_failed_tracks(
        self, item_ids: Sequence[LibraryItemId], *, now: datetime
    ) -> int:
        """Put the failed rows of the items' tracks back to `requested`, due now (the domain's
        RESCHEDULE_FAILED), so the relay dispatches them again. Answers how many."""
        ...
