"""WatchProgress, the fan-out of progress subscriptions (ADR 0031), with fakes: what each
subscriber is sent, in what order, and to whom."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator
from datetime import UTC, datetime

import pytest

from application.errors import LibraryItemNotFound, TooManySubscriptions
from application.ports.progress_changes import ProgressChange
from application.ports.unit_of_work import StorageUnavailable
from application.use_cases.watch_progress import (
    ProgressUpdate,
    WatchProgress,
    WatchProgressCommand,
)
from domain.library import IngestionProgress, LibraryItem, LibraryItemKind, SchedulingStatus
from domain.values import CatalogId, Isrc, UserId
from tests.unit.fakes import FakeProgressChanges, FakeStore, FakeUnitOfWorkFactory

T0 = datetime(2026, 12, 2, tzinfo=UTC)
ISRC = Isrc("XXSMP2500001")


class Rig:
    def __init__(self, max_per_user: int = 5) -> None:
        self.store = FakeStore()
        self.changes = FakeProgressChanges()
        self.watch = WatchProgress(
            FakeUnitOfWorkFactory(self.store), self.changes, max_per_user=max_per_user
        )

    def item(self, owner: str, catalog_id: str = "1") -> LibraryItem:
        item = LibraryItem.new(
            user_id=UserId(owner),
            kind=LibraryItemKind.ALBUM,
            catalog_id=CatalogId(catalog_id),
            at=T0,
        )
        self.store.items[item.id] = item
        self.store.isrcs[item.id] = frozenset({ISRC})
        return item

    def indexed(self, item: LibraryItem, count: int) -> None:
        self.store.progress[item.id] = IngestionProgress(
            scheduling=SchedulingStatus.DONE, tracks_total=10, tracks_indexed=count
        )

    async def changed(self, change: ProgressChange) -> None:
        """Announce a change and let the fan-out handle it."""
        self.changes.announce(change)
        await self.watch.fan_out_next()

    async def subscribed(self, owner: str, item_id: str | None = None) -> Subscription:
        updates = await self.watch(WatchProgressCommand(user_id=owner, item_id=item_id))
        subscription = Subscription(updates)
        await subscription.started()
        return subscription


class Subscription:
    """A stream being read the way the transport reads it: one update at a time."""

    def __init__(self, updates: AsyncGenerator[ProgressUpdate, None]) -> None:
        self.updates = updates
        self._next: asyncio.Task[ProgressUpdate] = asyncio.ensure_future(anext(updates))

    async def started(self) -> None:
        await asyncio.sleep(0)  # the stream registers on its first step

    async def next(self) -> ProgressUpdate:
        update = await self._next
        self._next = asyncio.ensure_future(anext(self.updates))
        return update

    def has_more(self) -> bool:
        return self._next.done()

    async def close(self) -> None:
        self._next.cancel()
        await asyncio.gather(self._next, return_exceptions=True)
        await self.updates.aclose()


def _indexed(update: ProgressUpdate) -> int:
    assert update.progress is not None
    return update.progress.tracks_indexed


async def test_an_item_subscription_starts_with_the_current_progress_then_each_change() -> None:
    rig = Rig()
    item = rig.item("alice")
    rig.indexed(item, 3)
    subscription = await rig.subscribed("alice", str(item.id))

    first = await subscription.next()
    rig.indexed(item, 7)
    await rig.changed(ProgressChange(isrcs=frozenset({ISRC})))
    second = await subscription.next()

    assert (first.item, _indexed(first)) == (item, 3)
    assert _indexed(second) == 7
    await subscription.close()


async def test_a_change_that_moves_nothing_visible_sends_nothing() -> None:
    rig = Rig()
    item = rig.item("alice")
    rig.indexed(item, 3)
    subscription = await rig.subscribed("alice", str(item.id))
    await subscription.next()

    await rig.changed(ProgressChange(item_ids=frozenset({item.id})))  # same progress
    assert not subscription.has_more()
    rig.indexed(item, 4)
    await rig.changed(ProgressChange(item_ids=frozenset({item.id})))

    assert _indexed(await subscription.next()) == 4
    await subscription.close()


async def test_a_slow_subscriber_gets_the_newest_state_not_a_backlog() -> None:
    rig = Rig()
    item = rig.item("alice")
    updates = await rig.watch(WatchProgressCommand(user_id="alice"))
    reading = asyncio.ensure_future(anext(updates))
    await asyncio.sleep(0)
    for count in (1, 2, 3):
        rig.indexed(item, count)
        rig.changes.announce(ProgressChange(isrcs=frozenset({ISRC})))
        await rig.watch.fan_out_next()

    assert _indexed(await reading) == 3
    pending = asyncio.ensure_future(anext(updates))
    await asyncio.sleep(0)
    assert not pending.done()  # 1 and 2 were replaced, not queued
    pending.cancel()
    await asyncio.gather(pending, return_exceptions=True)
    await updates.aclose()


async def test_another_users_item_and_an_unknown_or_malformed_id_are_refused_alike() -> None:
    rig = Rig()
    alices = rig.item("alice")

    refusals = []
    for item_id in (str(alices.id), str(uuid.uuid4()), "not-an-id"):
        with pytest.raises(LibraryItemNotFound) as refused:
            await rig.watch(WatchProgressCommand(user_id="bob", item_id=item_id))
        refusals.append(str(refused.value).replace(item_id[:64], "<id>"))

    assert len(set(refusals)) == 1


async def test_a_library_subscription_hears_its_owners_items_only() -> None:
    rig = Rig()
    alices = rig.item("alice", "1")
    bobs = rig.item("bob", "2")  # holds the same ISRC
    alice = await rig.subscribed("alice")
    bob = await rig.subscribed("bob")
    rig.indexed(alices, 5)
    rig.indexed(bobs, 6)

    await rig.changed(ProgressChange(isrcs=frozenset({ISRC})))

    assert (await alice.next()).item == alices
    assert (await bob.next()).item == bobs
    assert not alice.has_more() and not bob.has_more()
    await alice.close()
    await bob.close()


async def test_subscriptions_per_user_are_limited_and_a_closed_one_makes_room() -> None:
    rig = Rig(max_per_user=2)
    first = await rig.subscribed("alice")
    second = await rig.subscribed("alice")
    other_user = await rig.subscribed("bob")

    with pytest.raises(TooManySubscriptions) as refused:
        await rig.watch(WatchProgressCommand(user_id="alice"))
    await first.close()
    third = await rig.subscribed("alice")

    assert refused.value.limit == 2
    assert rig.watch.watching(UserId("alice")) == 2
    for subscription in (second, other_user, third):
        await subscription.close()
    assert rig.watch.watching(UserId("alice")) == 0


async def test_after_a_failed_read_the_next_change_reads_everything_watched() -> None:
    rig = Rig()
    item = rig.item("alice")
    subscription = await rig.subscribed("alice")
    rig.indexed(item, 2)

    rig.store.up = False
    with pytest.raises(StorageUnavailable):
        await rig.changed(ProgressChange(isrcs=frozenset({ISRC})))
    rig.store.up = True
    # A change about something else: what the lost one moved is read as well.
    await rig.changed(ProgressChange(item_ids=frozenset({uuid.uuid4()})))  # type: ignore[arg-type]

    update = await subscription.next()
    assert (update.item, _indexed(update)) == (item, 2)
    await subscription.close()


async def test_a_removed_item_ends_its_subscription_and_is_announced_to_the_library() -> None:
    rig = Rig()
    item = rig.item("alice")
    one = await rig.subscribed("alice", str(item.id))
    library = await rig.subscribed("alice")
    await one.next()

    del rig.store.items[item.id]
    await rig.changed(ProgressChange(removed=frozenset({(item.id, item.user_id)})))

    assert (await one.next()).removed
    with pytest.raises(StopAsyncIteration):
        await one.next()
    removal = await library.next()
    assert (removal.item_id, removal.removed) == (item.id, True)
    await library.close()
