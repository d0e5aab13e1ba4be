from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from application.ports.clock import Clock
from application.ports.unit_of_work import UnitOfWorkFactory

BATCH = 1000


@dataclass(frozen=True, slots=True)
class RescheduleCommand:
    include_unindexed: bool = False


@dataclass(frozen=True, slots=True)
class Rescheduled:
    requests: int  # ledger rows put back to `requested`
    jobs: int  # failed scheduling jobs put back to pending


class Reschedule:
    """Puts failed ingestion requests (and, if asked, every dispatched one not yet indexed) back
    to `requested`, and failed scheduling jobs (items that show FAILED) back to pending, in
    batches of 1,000, one transaction each; the relay dispatches and schedules them again (an
    item the catalogue did not know fails again, without a catalogue call while the cache
    remembers it). `progress` is told the running total of requests after each batch."""

    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow_factory = uow_factory
        self._clock = clock

    async def __call__(
        self, command: RescheduleCommand, progress: Callable[[int], None] = lambda _: None
    ) -> Rescheduled:
        requests = 0
        while True:
            async with self._uow_factory() as uow:
                count = await uow.ledger.reset_to_requested(
                    include_unindexed=command.include_unindexed, limit=BATCH, now=self._clock.now()
                )
                await uow.commit()
            requests += count
            progress(requests)
            if count < BATCH:
                break
        jobs = 0
        while True:
            async with self._uow_factory() as uow:
                reopened = await uow.jobs.reopen_failed(now=self._clock.now(), limit=BATCH)
                await uow.commit()
            jobs += len(reopened)
            if len(reopened) < BATCH:
                return Rescheduled(requests=requests, jobs=jobs)
