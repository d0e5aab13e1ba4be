"""The add's one write, as a port of its own: the hottest path of the service."""

from __future__ import annotations

from typing import Protocol

from domain.library import LibraryItem


class LibraryAdditions(Protocol):
    """Adds items to users' libraries together with their scheduling jobs.

    Not a method of the UnitOfWork because it needs none of its generality: the add is one
    atomic write whose whole contract fits in one call, and an adapter can then run it as a
    single statement (one round trip and one commit) instead of a transaction of several."""

    async def add(
        self, item: LibraryItem, *, max_pending: int | None = None
    ) -> tuple[LibraryItem, bool]:
        """Store `item` unless its owner already has an item of the same kind and catalogue id,
        and, only when it was stored now, record its scheduling job (the outbox) and wake the
        relays; all of it committed together before this returns, or none of it.

        A new item is refused with TooManyPendingAdds, and nothing written, when its owner
        already has `max_pending` scheduling jobs pending (None: no cap). A re-add is answered
        as usual: it writes no job. A re-add of a kind that changes after it is added
        (`kind.resyncs_on_readd`: playlists) whose job has ended, done or failed, re-syncs it in
        the same write, while the cap is open: the job is pending again, due now, its attempts
        and error cleared, the item's track links removed and the relays woken (ADR 0029). If
        its job is claimed and running, the re-sync waits for the run's finish (`finish`).
        Concurrent adds of one owner may each count before the
        others' jobs, so the owner may end up past the cap by their number of concurrent adds.

        A new item given without a title may be stored with the title and artist names that a
        catalogue cache beside the library already holds for it (a read, never a catalogue
        call); the returned item then carries them.

        Returns the stored item (the existing one on a re-add, unchanged) and whether it was
        created now. Concurrent identical adds create exactly one item and one job. Raises
        StorageUnavailable when the database cannot be reached or is lost mid-write; nothing is
        then committed and retrying is safe."""
        ...
