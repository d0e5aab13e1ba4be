"""The IngestionQueue port's contract: each request delivered under its idempotency key, in
batches of any size, and QueueUnavailable when the queue does not take a batch (which may then
be sent again)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from application.ports.ingestion_queue import IngestionQueue, QueueUnavailable
from domain.ingestion import IngestionRequest
from domain.values import CatalogId, Isrc, LibraryItemId

LIBRARY_ITEM = LibraryItemId(uuid.UUID("6f1c2a52-8f4e-4b8e-9c55-0d3c1f2e8a10"))


def requests(count: int, first: int = 0) -> list[IngestionRequest]:
    return [
        IngestionRequest(
            isrc=Isrc(f"QZCTR{n:07d}"),
            track_id=CatalogId(str(1000 + n)),
            album_id=CatalogId("77646168") if n % 2 == 0 else None,
            library_item_id=LIBRARY_ITEM,
        )
        for n in range(first, first + count)
    ]


def keys(batch: list[IngestionRequest]) -> list[str]:
    return [request.idempotency_key for request in batch]


@dataclass
class QueueRig:
    """The adapter under test and what it sends to. `delivered` lists the ids of every request
    that reached the other side, in order, repeats included; `take_down` and `bring_up` switch
    the other side off and on."""

    queue: IngestionQueue
    delivered: Callable[[], list[str]]
    take_down: Callable[[], None]
    bring_up: Callable[[], None]


class IngestionQueueContract:
    """Subclass as `Test<Adapter>IngestionQueueContract` with a fixture `rig` giving a
    QueueRig whose other side is up and has received nothing."""

    def test_the_largest_batch_is_a_positive_whole_number(self, rig: QueueRig) -> None:
        assert isinstance(rig.queue.max_batch, int)
        assert rig.queue.max_batch >= 1

    async def test_an_empty_batch_delivers_nothing(self, rig: QueueRig) -> None:
        await rig.queue.send([])

        assert rig.delivered() == []

    async def test_each_request_is_delivered_once_under_its_idempotency_key(
        self, rig: QueueRig
    ) -> None:
        batch = requests(7)

        await rig.queue.send(batch)

        assert sorted(rig.delivered()) == sorted(keys(batch))

    async def test_a_batch_larger_than_the_largest_is_delivered_whole(self, rig: QueueRig) -> None:
        batch = requests(rig.queue.max_batch * 2 + 1)

        await rig.queue.send(batch)

        assert sorted(rig.delivered()) == sorted(keys(batch))

    async def test_a_batch_sent_twice_is_delivered_under_the_same_keys(self, rig: QueueRig) -> None:
        batch = requests(3)

        await rig.queue.send(batch)
        await rig.queue.send(batch)

        assert sorted(rig.delivered()) == sorted(keys(batch) * 2)

    async def test_a_queue_that_is_down_raises_queue_unavailable_and_the_batch_can_be_resent(
        self, rig: QueueRig
    ) -> None:
        batch = requests(3)
        rig.take_down()

        with pytest.raises(QueueUnavailable):
            await rig.queue.send(batch)

        rig.bring_up()
        await rig.queue.send(batch)
        assert set(rig.delivered()) == set(keys(batch))
