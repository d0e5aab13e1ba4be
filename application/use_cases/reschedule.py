from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from application.ports.clock import Clock
from application.ports.unit_of_work import UnitOfWorkFactory

BATCH = 1000


@dataclass(frozen=True, slots=True)
class RescheduleCommand:
    include_unindexed: bool = False


class Reschedule:
    """Puts failed ingestion requests (and, if asked, every dispatched one not yet indexed) back
    to `requested`, in batches of 1,000, one transaction each; the relay dispatches them again.
    `progress` is told the running total after each batch. Returns the total."""

    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow_factory = uow_factory
        self._clock = clock

    async def __call__(
        self, command: RescheduleCommand, progress: Callable[[int], None] = lambda _: None
    ) -> int:
        total = 0
        while True:
            async with self._uow_factory() as uow:
                count = await uow.ledger.reset_to_requested(
                    include_unindexed=command.include_unindexed, limit=BATCH, now=self._clock.now()
                )
                await uow.commit()
            total += count
            progress(total)
            if count < BATCH:
                return total
