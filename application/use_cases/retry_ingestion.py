"""A user's retry of an item whose ingestion failed."""

from __future__ import annotations

from dataclasses import dataclass

from application.errors import NothingToRetry, item_id_or_not_found
from application.ports.clock import Clock
from application.ports.unit_of_work import UnitOfWorkFactory
from application.use_cases.get_library_item import owned_item
from domain.library import LibraryItem
from domain.values import parse_user_id


@dataclass(frozen=True, slots=True)
class RetryIngestionCommand:
    user_id: str
    item_id: str


class RetryIngestion:
    """Puts what failed of one of the user's items back to be done, in one transaction: a job
    that gave up (FAILED) is pending again and the relays are woken; the item's tracks whose
    ingestion failed are requested again. An item the catalogue did not know fails again
    without a catalogue call while the catalogue cache remembers it (ADR 0028).
    Raises LibraryItemNotFound for malformed, unknown and other users' ids alike, and
    NothingToRetry when nothing of the item failed; either way nothing is changed."""

    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow_factory = uow_factory
        self._clock = clock

    async def __call__(self, command: RetryIngestionCommand) -> LibraryItem:
        parse_user_id(command.user_id)  # a bad user id is refused before the database
        item_id_or_not_found(command.item_id)
        async with self._uow_factory() as uow:
            item = await owned_item(uow, command.user_id, command.item_id)
            now = self._clock.now()
            reopened = await uow.jobs.reopen_failed(now=now, item_ids=[item.id], limit=1)
            tracks = await uow.ledger.reopen_failed_tracks([item.id], now=now)
            if not reopened and not tracks:
                raise NothingToRetry(command.item_id)
            await uow.commit()
        return item
