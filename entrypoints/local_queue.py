"""The IngestionQueue used when Inngest is not configured: an in-process worker pool.

Requests are handed to a bounded number of worker tasks that run IngestTrack. The queue holds
nothing durable itself: the ledger does. A request is `dispatched` in the ledger until IngestTrack
marks it `indexed` or `failed`, so at start every dispatched-but-not-indexed request is loaded
again, and a restart mid-ingestion finishes the work (IngestTrack is idempotent per ISRC)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import timedelta

import structlog

from application.ports.ingestion_queue import QueueUnavailable
from application.ports.unit_of_work import UnitOfWorkFactory
from application.use_cases.ingest_track import IngestTrack, IngestTrackCommand
from domain.ingestion import IngestionRequest, retry_delay

log = structlog.get_logger("libingest.local_queue")

RETRY_BASE = timedelta(seconds=0.5)
RETRY_CAP = timedelta(seconds=30)


async def cancel_and_wait(tasks: Sequence[asyncio.Task[None]], grace: float = 5.0) -> None:
    """Cancel and wait for tasks, cancelling again any that swallowed the first cancellation
    (Python 3.11's asyncio.wait_for can, when its inner future finishes at the same moment)."""
    pending = {task for task in tasks if not task.done()}
    deadline = asyncio.get_running_loop().time() + grace
    while pending and asyncio.get_running_loop().time() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.2)
    if pending:
        log.error("tasks.did_not_stop", tasks=[task.get_name() for task in pending])


async def in_flight_commands(uow_factory: UnitOfWorkFactory) -> list[IngestTrackCommand]:
    """What the queue must run again at start: dispatched before a restart, not yet indexed."""
    async with uow_factory() as uow:
        requests = await uow.ledger.in_flight(limit=100_000)
    return [_command(request) for request in requests]


def _command(request: IngestionRequest) -> IngestTrackCommand:
    return IngestTrackCommand(
        isrc=request.isrc.value,
        track_id=request.track_id.value,
        album_id=request.album_id.value if request.album_id else None,
        library_item_id=str(request.library_item_id),
    )


class LocalQueue:
    """Started and stopped by the container (its `local_queue` resource), never by hand."""

    max_batch = 500

    def __init__(self, ingest: IngestTrack, *, concurrency: int = 4, attempts: int = 6) -> None:
        self._ingest = ingest
        self._concurrency = concurrency
        self._attempts = attempts
        self._pending: asyncio.Queue[IngestTrackCommand] = asyncio.Queue()
        self._queued: set[str] = set()  # ISRCs waiting or running, so a resend is not doubled
        self._workers: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def backlog(self) -> int:
        return len(self._queued)

    async def start(self, redeliver: Sequence[IngestTrackCommand] = ()) -> None:
        for command in redeliver:
            self._enqueue(command)
        self._workers = [
            asyncio.create_task(self._work(), name=f"local-ingest-{n}")
            for n in range(self._concurrency)
        ]
        log.info("local_queue.started", workers=self._concurrency, redelivered=len(redeliver))

    async def stop(self) -> None:
        self._stopping = True
        await cancel_and_wait(self._workers)
        self._workers = []

    async def send(self, requests: Sequence[IngestionRequest]) -> None:
        if not self._workers:
            raise QueueUnavailable("the local ingestion queue is not running")
        for request in requests:
            self._enqueue(_command(request))

    def _enqueue(self, command: IngestTrackCommand) -> None:
        if command.isrc in self._queued:
            return
        self._queued.add(command.isrc)
        self._pending.put_nowait(command)

    async def _work(self) -> None:
        while not self._stopping:
            command = await self._pending.get()
            try:
                await self._run(command)
            finally:
                self._queued.discard(command.isrc)
                self._pending.task_done()

    async def _run(self, command: IngestTrackCommand) -> None:
        for attempt in range(1, self._attempts + 1):
            try:
                outcome = await self._ingest(command)
                log.debug("local_queue.ingested", isrc=command.isrc, outcome=outcome.value)
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if attempt == self._attempts:
                    log.warning("local_queue.gave_up", isrc=command.isrc, error=str(error))
                    with contextlib.suppress(Exception):
                        await self._ingest.mark_failed(
                            command.isrc, f"gave up after {attempt} attempts: {error}"[:500]
                        )
                    return
                delay = retry_delay(attempt, base=RETRY_BASE, cap=RETRY_CAP)
                log.info(
                    "local_queue.retrying", isrc=command.isrc, attempt=attempt, error=str(error)
                )
                await asyncio.sleep(delay.total_seconds())
