"""One track to ingest, and the pure policies that decide which tracks become requests."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from domain.values import CatalogId, Isrc, LibraryItemId

EVENT_NAME = "track/ingestion.requested"
# Inngest deduplicates events by id for 24 hours; the ledger's window matches it.
SCHEDULE_WINDOW = timedelta(hours=24)

T = TypeVar("T")


def idempotency_key(isrc: Isrc) -> str:
    """The event id: namespaced by event name, as Inngest advises."""
    return f"track-ingestion-requested:{isrc.value}"


@dataclass(frozen=True, slots=True)
class IngestionRequest:
    """One track to put into the search index, and the library item that caused it."""

    isrc: Isrc
    track_id: CatalogId
    album_id: CatalogId | None
    library_item_id: LibraryItemId

    @property
    def idempotency_key(self) -> str:
        return idempotency_key(self.isrc)


@dataclass(frozen=True, slots=True)
class CandidateTrack:
    """A track of a library item as the catalogue gave it; it may lack an ISRC."""

    track_id: CatalogId
    isrc: Isrc | None


@dataclass(frozen=True, slots=True)
class Deduplicated:
    """The outcome of dedupe: one track per ISRC (first wins), and the tracks with no ISRC."""

    unique: tuple[CandidateTrack, ...]
    without_isrc: tuple[CandidateTrack, ...]
    duplicates: tuple[CandidateTrack, ...]


def dedupe(candidates: Iterable[CandidateTrack], seen: set[Isrc] | None = None) -> Deduplicated:
    """At most one track per ISRC, the first in album order winning.

    `seen` carries the ISRCs of earlier pages of the same album, so dedupe works page by page;
    it is updated in place. Tracks without an ISRC are reported, never dropped silently.
    """
    already = seen if seen is not None else set()
    unique: list[CandidateTrack] = []
    without: list[CandidateTrack] = []
    duplicates: list[CandidateTrack] = []
    for candidate in candidates:
        if candidate.isrc is None:
            without.append(candidate)
        elif candidate.isrc in already:
            duplicates.append(candidate)
        else:
            already.add(candidate.isrc)
            unique.append(candidate)
    return Deduplicated(tuple(unique), tuple(without), tuple(duplicates))


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Batches of at most `size`, order kept, no empty batch; their concatenation is `items`."""
    if size < 1:
        raise ValueError(f"batch size must be positive, not {size}")
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True, slots=True)
class IndexFiltered:
    to_schedule: tuple[Isrc, ...]
    already_indexed: tuple[Isrc, ...]


def filter_indexed(candidates: Sequence[Isrc], indexed: set[Isrc] | None) -> IndexFiltered:
    """Split candidates by what the index holds. `None` means the index was unavailable:
    fail open and schedule them all, since a duplicate ingestion is cheaper than a lost one."""
    if indexed is None:
        return IndexFiltered(tuple(candidates), ())
    keep = tuple(isrc for isrc in candidates if isrc not in indexed)
    held = tuple(isrc for isrc in candidates if isrc in indexed)
    return IndexFiltered(keep, held)


# -- the ISRC ledger's lifecycle ---------------------------------------------------------------
#
# One row per ISRC ever requested. The PostgreSQL ledger takes every state, source set and window
# below as bind parameters (ADR 0024), so the rules tested here are the ones its statements run.


class LedgerState(StrEnum):
    REQUESTED = "requested"  # recorded, waiting for the queue to accept its event
    DISPATCHED = "dispatched"  # the queue accepted the event; the worker has not reported yet
    INDEXED = "indexed"  # the index holds the track
    FAILED = "failed"  # the worker gave up; only `libingest reschedule` asks again


@dataclass(frozen=True, slots=True)
class LedgerTransition:
    """A move of a ledger row: a row in one of `sources` goes to `target`; a row in any other
    state is left as it is. With `inserts`, an ISRC not in the ledger yet gets a row in
    `target`; without, it stays out."""

    sources: frozenset[LedgerState]
    target: LedgerState
    inserts: bool = False

    def applied_to(self, state: LedgerState | None) -> LedgerState | None:
        if state is None:
            return self.target if self.inserts else None
        return self.target if state in self.sources else state


_EVERY_STATE = frozenset(LedgerState)

# The queue accepted a batch of events.
DISPATCH = LedgerTransition(frozenset({LedgerState.REQUESTED}), LedgerState.DISPATCHED)
# The queue refused: the rows wait, with backoff, still requested.
DEFER_DISPATCH = LedgerTransition(frozenset({LedgerState.REQUESTED}), LedgerState.REQUESTED)
# The worker put the track into the index: whatever the row said, the index is the truth.
MARK_INDEXED = LedgerTransition(_EVERY_STATE, LedgerState.INDEXED)
# Scheduling found the track in the index already.
RECORD_INDEXED = LedgerTransition(
    _EVERY_STATE - {LedgerState.INDEXED}, LedgerState.INDEXED, inserts=True
)
# The worker gave up; a track already indexed stays indexed.
MARK_FAILED = LedgerTransition(_EVERY_STATE - {LedgerState.INDEXED}, LedgerState.FAILED)
# `libingest reschedule`: the failed rows, and with --all the dispatched ones too.
RESCHEDULE_FAILED = LedgerTransition(frozenset({LedgerState.FAILED}), LedgerState.REQUESTED)
RESCHEDULE_UNINDEXED = LedgerTransition(
    frozenset({LedgerState.FAILED, LedgerState.DISPATCHED}), LedgerState.REQUESTED
)

# The states that settle an ISRC only within the schedule window. A dispatch older than Inngest's
# 24 h dedupe window that never reached the index is not settled: Inngest has forgotten its id,
# so requesting it again cannot double an ingestion in flight.
SETTLED_WITHIN_WINDOW = frozenset({LedgerState.DISPATCHED})


def window_start(now: datetime) -> datetime:
    """Where the schedule window begins at `now`: a dispatch after this instant is inside it, a
    dispatch at or before it is due again."""
    return now - SCHEDULE_WINDOW


def due_for_dispatch(last_dispatched_at: datetime | None, now: datetime) -> bool:
    """A request dispatched less than 24 h ago is not dispatched again."""
    return last_dispatched_at is None or last_dispatched_at <= window_start(now)


def is_settled(state: LedgerState | None, dispatched_at: datetime | None, now: datetime) -> bool:
    """Whether an ISRC needs no new request: it is in the ledger (`state` None: it is not), and
    not a dispatch the window has let go of."""
    if state is None:
        return False
    if state in SETTLED_WITHIN_WINDOW:
        return not due_for_dispatch(dispatched_at, now)
    return True


def after_request(
    state: LedgerState | None, dispatched_at: datetime | None, now: datetime
) -> LedgerState:
    """The row's state once a job asked for the ISRC: recorded as requested unless settled."""
    if state is not None and is_settled(state, dispatched_at, now):
        return state
    return LedgerState.REQUESTED


def retry_delay(attempt: int, *, base: timedelta, cap: timedelta) -> timedelta:
    """Exponential backoff: base, 2 base, 4 base, ... never more than cap. `attempt` counts
    from 1."""
    exponent = min(max(attempt, 1) - 1, 32)  # 2**32 x base is past any sensible cap
    delay: timedelta = base * (2**exponent)
    return min(cap, delay)
