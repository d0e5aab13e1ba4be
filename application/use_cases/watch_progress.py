from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from application.errors import LibraryItemNotFound, TooManySubscriptions, item_id_or_not_found
from application.ports.progress_changes import ProgressChange, ProgressChanges
from application.ports.unit_of_work import StorageUnavailable, UnitOfWorkFactory
from domain.library import IngestionProgress, LibraryItem
from domain.values import LibraryItemId, UserId, parse_user_id


@dataclass(frozen=True, slots=True)
class WatchProgressCommand:
    user_id: str
    item_id: str | None = None  # None: every item of the user's library


@dataclass(frozen=True, slots=True)
class ProgressUpdate:
    """One item as it is now; `item` and `progress` are None when it was removed."""

    item_id: LibraryItemId
    item: LibraryItem | None
    progress: IngestionProgress | None

    @property
    def removed(self) -> bool:
        return self.item is None


class _Watcher:
    """One subscription: what it watches, and the newest update of each item not yet taken.
    A slow subscriber therefore holds at most one update per item, never a backlog."""

    __slots__ = ("_arrived", "_pending", "_sent", "item_id", "owner")

    def __init__(self, owner: UserId, item_id: LibraryItemId | None) -> None:
        self.owner = owner
        self.item_id = item_id
        self._pending: dict[LibraryItemId, ProgressUpdate] = {}
        self._sent: dict[LibraryItemId, ProgressUpdate] = {}
        self._arrived = asyncio.Event()

    def wants(self, owner: UserId, item_id: LibraryItemId) -> bool:
        # The owner is compared here as well as in the SQL: isolation does not rest on one check.
        return owner == self.owner and self.item_id in (None, item_id)

    def offer(self, update: ProgressUpdate) -> None:
        if self._sent.get(update.item_id) == update:
            self._pending.pop(update.item_id, None)  # back to what the subscriber last saw
            return
        self._pending[update.item_id] = update
        self._arrived.set()

    async def updates(self) -> list[ProgressUpdate]:
        await self._arrived.wait()
        self._arrived.clear()
        taken = list(self._pending.values())
        self._pending.clear()
        for update in taken:
            self._sent[update.item_id] = update
        return taken


class WatchProgress:
    """Live ingestion progress: one item of the user's, or their whole library (ADR 0031).

    Calling it checks the request (an unknown id, a malformed one and another user's all raise
    the same LibraryItemNotFound; past `max_per_user` subscriptions, TooManySubscriptions) and
    answers the stream of updates: for one item, its current state first, then each change,
    ending when the item is removed; for a library, each change of any of its items. An update
    that equals what the subscriber last got is not sent again.

    One fan-out per process (`fan_out_next`, called in a loop by the entrypoint) takes the
    changes from the ProgressChanges feed and reads the watched items they moved, once for
    every subscriber: the database work follows the changes, not the number of watchers."""

    def __init__(
        self, uow_factory: UnitOfWorkFactory, changes: ProgressChanges, *, max_per_user: int
    ) -> None:
        self._uow_factory = uow_factory
        self._changes = changes
        self._max_per_user = max_per_user
        self._watchers: dict[UserId, set[_Watcher]] = {}
        self._missed = False

    async def __call__(self, command: WatchProgressCommand) -> AsyncGenerator[ProgressUpdate, None]:
        owner = parse_user_id(command.user_id)
        item_id: LibraryItemId | None = None
        if command.item_id is not None:
            item_id = item_id_or_not_found(command.item_id)
            async with self._uow_factory() as uow:
                if await uow.library.get(owner, item_id) is None:
                    raise LibraryItemNotFound(command.item_id)
        self._check_room(owner)
        return self._watch(owner, item_id)

    def watching(self, user_id: UserId) -> int:
        """How many subscriptions `user_id` holds in this process."""
        return len(self._watchers.get(user_id, ()))

    async def fan_out_next(self) -> None:
        """Waits for the next change and offers what it moved to each subscriber it concerns.
        Raises StorageUnavailable when the read fails; the next call then reads everything
        watched, since what this change moved is unknown."""
        change = await self._changes.next()
        if self._missed:
            change = ProgressChange(everything=True, removed=change.removed)
            self._missed = False
        for item_id, owner in change.removed:
            self._offer(owner, ProgressUpdate(item_id=item_id, item=None, progress=None))
        owners = {owner for owner, watchers in self._watchers.items() if _library_of(watchers)}
        items = {
            watcher.item_id
            for watchers in self._watchers.values()
            for watcher in watchers
            if watcher.item_id is not None
        }
        if not owners and not items:
            return
        try:
            async with self._uow_factory() as uow:
                touched = await uow.progress.touched_items(change, owners=owners, item_ids=items)
                progress = await uow.progress.for_items([item.id for item in touched])
        except StorageUnavailable:
            self._missed = True
            raise
        for item in touched:
            update = ProgressUpdate(item_id=item.id, item=item, progress=progress[item.id])
            self._offer(item.user_id, update)

    def _offer(self, owner: UserId, update: ProgressUpdate) -> None:
        for watcher in self._watchers.get(owner, ()):
            if watcher.wants(owner, update.item_id):
                watcher.offer(update)

    def _check_room(self, owner: UserId) -> None:
        if self.watching(owner) >= self._max_per_user:
            raise TooManySubscriptions(self._max_per_user)

    async def _watch(
        self, owner: UserId, item_id: LibraryItemId | None
    ) -> AsyncGenerator[ProgressUpdate, None]:
        # Registered when the stream starts, not when it was asked for: a stream that is
        # never started (its connection gone first) then holds nothing.
        self._check_room(owner)
        watcher = _Watcher(owner, item_id)
        self._watchers.setdefault(owner, set()).add(watcher)
        try:
            if item_id is not None:
                # Read after registering: a change committed meanwhile is offered again
                # rather than missed.
                watcher.offer(await self._current(owner, item_id))
            while True:
                for update in await watcher.updates():
                    yield update
                    if update.removed and item_id is not None:
                        return
        finally:
            watchers = self._watchers[owner]
            watchers.discard(watcher)
            if not watchers:
                del self._watchers[owner]

    async def _current(self, owner: UserId, item_id: LibraryItemId) -> ProgressUpdate:
        async with self._uow_factory() as uow:
            item = await uow.library.get(owner, item_id)
            if item is None:
                return ProgressUpdate(item_id=item_id, item=None, progress=None)
            progress = await uow.progress.for_items([item_id])
        return ProgressUpdate(item_id=item_id, item=item, progress=progress[item_id])


def _library_of(watchers: set[_Watcher]) -> bool:
    return any(watcher.item_id is None for watcher in watchers)
