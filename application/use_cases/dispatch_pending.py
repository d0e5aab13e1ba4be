from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from application.ports.clock import Clock
from application.ports.ingestion_queue import IngestionQueue, QueueUnavailable
from application.ports.metrics import SchedulingMetrics
from application.ports.unit_of_work import UnitOfWorkFactory
from domain.ingestion import retry_delay

DISPATCH_RETRY_BASE = timedelta(seconds=1)
DISPATCH_RETRY_CAP = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class DispatchReport:
    sent: int
    queue_unavailable: bool


class DispatchPending:
    """Sends every due `requested` ledger row to the queue, one batch per transaction: the rows
    are claimed (SKIP LOCKED, so concurrent dispatchers share the work), sent, and marked
    dispatched before the transaction commits. If the queue refuses, the batch is deferred with
    backoff and stays `requested`: nothing is lost. A crash between send and commit leaves the
    rows `requested`; sending them again is harmless because each event's id is its idempotency
    key."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        queue: IngestionQueue,
        clock: Clock,
        metrics: SchedulingMetrics,
    ) -> None:
        self._uow_factory = uow_factory
        self._queue = queue
        self._clock = clock
        self._metrics = metrics

    async def __call__(self) -> DispatchReport:
        sent = 0
        while True:
            async with self._uow_factory() as uow:
                now = self._clock.now()
                batch = await uow.ledger.claim_dispatchable(limit=self._queue.max_batch, now=now)
                if not batch.requests:
                    return DispatchReport(sent=sent, queue_unavailable=False)
                isrcs = [request.isrc for request in batch.requests]
                try:
                    await self._queue.send(batch.requests)
                except QueueUnavailable as error:
                    delay = retry_delay(
                        batch.most_attempts + 1,
                        base=DISPATCH_RETRY_BASE,
                        cap=DISPATCH_RETRY_CAP,
                    )
                    await uow.ledger.defer_dispatch(
                        isrcs, reason=str(error), retry_at=now + delay, now=now
                    )
                    await uow.commit()
                    self._metrics.dispatch_failed()
                    return DispatchReport(sent=sent, queue_unavailable=True)
                await uow.ledger.mark_dispatched(isrcs, now=self._clock.now())
                await uow.commit()
            sent += len(isrcs)
            self._metrics.events_dispatched(len(isrcs))
