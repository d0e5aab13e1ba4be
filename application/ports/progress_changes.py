"""What changed in ingestion progress, as the storage announces it (ADR 0031)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from domain.values import Isrc, LibraryItemId, UserId


@dataclass(frozen=True, slots=True)
class ProgressChange:
    """Everything committed since the previous change was taken, merged.

    A change says where to look, not what is there now: the progress of the items it names is
    read afterwards, so a change that moved nothing visible costs a read and sends nothing."""

    # Items whose own rows moved: added, their job's status or error, their track links, title.
    item_ids: frozenset[LibraryItemId] = frozenset()
    # Ledger rows whose state moved; every item holding one of these tracks may have moved.
    isrcs: frozenset[Isrc] = frozenset()
    # Items removed, with their owner (the row is gone by the time anyone reads).
    removed: frozenset[tuple[LibraryItemId, UserId]] = frozenset()
    # Changes may have gone unheard (the feed lost its connection, or too many piled up):
    # everything watched must be read again.
    everything: bool = False

    @property
    def is_empty(self) -> bool:
        return not (self.item_ids or self.isrcs or self.removed or self.everything)


@dataclass(slots=True)
class PendingChanges:
    """Changes heard and not yet taken, merged; past `max_entries`, an `everything` change
    instead, so that a consumer that fell behind costs bounded memory."""

    max_entries: int = 10_000
    item_ids: set[LibraryItemId] = field(default_factory=set)
    isrcs: set[Isrc] = field(default_factory=set)
    removed: set[tuple[LibraryItemId, UserId]] = field(default_factory=set)
    everything: bool = False

    def add(self, change: ProgressChange) -> None:
        self.everything = self.everything or change.everything
        if not self.everything:
            self.item_ids |= change.item_ids
            self.isrcs |= change.isrcs
            if len(self.item_ids) + len(self.isrcs) > self.max_entries:
                self.everything = True
        if self.everything:
            self.item_ids.clear()
            self.isrcs.clear()
        # Removals are few (one item per mutation) and cannot be read again later: kept.
        self.removed |= change.removed

    def take(self) -> ProgressChange:
        change = ProgressChange(
            item_ids=frozenset(self.item_ids),
            isrcs=frozenset(self.isrcs),
            removed=frozenset(self.removed),
            everything=self.everything,
        )
        self.item_ids, self.isrcs, self.removed, self.everything = set(), set(), set(), False
        return change


class ProgressChanges(Protocol):
    """The changes to ingestion progress committed by any process, as they are committed.

    One consumer per process takes them (the fan-out of WatchProgress). Not transactional.
    A change is announced only after its transaction committed, never for one rolled back.
    Changes committed while the feed could not hear them (its connection lost) are not lost
    silently: the next change taken says `everything`. Raises nothing: a feed that cannot
    listen keeps trying and the consumer simply waits."""

    async def next(self) -> ProgressChange:
        """Waits until at least one change is pending, then answers all pending changes merged
        into one (never an empty one)."""
        ...
