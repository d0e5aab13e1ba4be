"""One track to ingest, and the pure policies that decide which tracks become requests."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
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


def due_for_dispatch(last_dispatched_at: datetime | None, now: datetime) -> bool:
    """A request dispatched less than 24 h ago is not dispatched again."""
    return last_dispatched_at is None or now - last_dispatched_at >= SCHEDULE_WINDOW


def retry_delay(attempt: int, *, base: timedelta, cap: timedelta) -> timedelta:
    """Exponential backoff: base, 2 base, 4 base, ... never more than cap. `attempt` counts
    from 1."""
    exponent = min(max(attempt, 1) - 1, 32)  # 2**32 x base is past any sensible cap
    delay: timedelta = base * (2**exponent)
    return min(cap, delay)
