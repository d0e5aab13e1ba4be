"""The outbox relay: claims scheduling jobs and runs ScheduleIngestion over them: each album or
playlist job alone, the track jobs of one claim together (ADRs 0023, 0029).

It runs as an asyncio task in every API process (and alone as `libingest relay`). It wakes at
once on the NOTIFY that an add's commit sends, and sweeps every `sweep_interval` seconds for
anything a notification missed, for jobs whose backoff has passed and for deferred dispatches.
Several relays share the work through leased claims (SKIP LOCKED); a job is never run by two.
While a job runs, a heartbeat renews its lease every third of it, so the lease can be short: a
killed process's jobs are taken over within one lease (15 s), and a page that takes long (TIDAL
retries honouring Retry-After) never lets the lease run out under a live worker.

Up to `concurrency` album and playlist jobs run at a time, each its own task, so that its first
page is handled as soon as it arrives whatever else is going on; track jobs run in batches of at
most `batch_size`, one batch at a time. A single track costs next to nothing to schedule but
its fixed per-job costs; batched, those are paid once per claim. Under load the batches grow by
themselves: while a batch runs, due track jobs wait and the next claim takes them together.
Idle, a batch is the one job that just arrived, so nothing waits for company.

Claims share the work fairly between users (ADR 0028): round-robin between owners, and at most
`albums_per_user` albums and playlists together (`tracks_per_user` tracks) of one owner under way
at once across every relay, so a user's flood leaves slots free for everyone else's first item."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections import Counter
from datetime import timedelta
from typing import Protocol, cast

import structlog

from application.ports.clock import Clock
from application.ports.metrics import SchedulingMetrics
from application.ports.scheduling import ClaimedJob
from application.ports.unit_of_work import UnitOfWorkFactory
from application.use_cases.dispatch_pending import DispatchPending
from application.use_cases.schedule_ingestion import (
    JobOutcome,
    ScheduleIngestion,
    ScheduleIngestionCommand,
    ScheduleOutcomes,
)
from domain.fair_share import ALBUMS_PER_USER, TRACKS_PER_USER
from domain.library import PAGED_KINDS, LibraryItemKind
from domain.values import LibraryItemId
from entrypoints.local_queue import cancel_and_wait

log = structlog.get_logger("libingest.relay")


def log_failures(outcomes: ScheduleOutcomes) -> None:
    """A WARNING with the reason for each job that failed for good (rare: one line each), and
    one per reason for the jobs that will be retried (a batch fails together)."""
    retrying: Counter[str] = Counter()
    for item_id, outcome in outcomes.items():
        reason = outcomes.reasons.get(item_id, "")
        if outcome is JobOutcome.FAILED:
            log.warning("relay.job.failed", library_item_id=str(item_id), reason=reason)
        elif outcome is JobOutcome.RETRY:
            retrying[reason] += 1
    for reason, jobs in retrying.items():
        log.warning("relay.batch.retrying", jobs=jobs, reason=reason)


class Wakeups(Protocol):
    async def wait(self, seconds: float) -> bool: ...

    def wake(self) -> None: ...


class Relay:
    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        schedule: ScheduleIngestion,
        dispatch: DispatchPending,
        wakeups: Wakeups,
        clock: Clock,
        metrics: SchedulingMetrics,
        concurrency: int = 4,
        batch_size: int = 50,
        sweep_interval: float = 1.0,
        lease: timedelta = timedelta(seconds=15),
        worker_id: str | None = None,
        albums_per_user: int = ALBUMS_PER_USER,
        tracks_per_user: int = TRACKS_PER_USER,
    ) -> None:
        self._uow_factory = uow_factory
        self._schedule = schedule
        self._dispatch = dispatch
        self._wakeups = wakeups
        self._clock = clock
        self._metrics = metrics
        self._concurrency = concurrency
        self._batch_size = batch_size
        self._sweep_interval = sweep_interval
        self._lease = lease
        self._albums_per_user = albums_per_user
        self._tracks_per_user = tracks_per_user
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Every job in flight, album or track, with the task running it (a batch's task is
        # there once per job): what the heartbeat renews and stop() hands back.
        self._running: dict[LibraryItemId, asyncio.Task[None]] = {}
        self._albums: set[asyncio.Task[None]] = set()
        self._batches: set[asyncio.Task[None]] = set()
        self._dispatching: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="relay")
        self._heartbeat_task = asyncio.create_task(self._heartbeat(), name="relay-heartbeat")
        log.info(
            "relay.started",
            worker=self.worker_id,
            concurrency=self._concurrency,
            batch_size=self._batch_size,
        )

    async def stop(self) -> None:
        """Cancel the loop and the jobs in flight, and hand their leases back at once, so a
        restarted relay (or another process) resumes them without waiting for the lease."""
        loops = [task for task in (self._task, self._heartbeat_task) if task is not None]
        await cancel_and_wait(loops)
        self._task = self._heartbeat_task = None
        in_flight = list(self._running)
        jobs = list(dict.fromkeys(self._running.values()))  # a batch's task once
        tasks = [*jobs, *([self._dispatching] if self._dispatching else [])]
        await cancel_and_wait(tasks)
        self._running.clear()
        self._albums.clear()
        self._batches.clear()
        if in_flight:
            try:
                async with asyncio.timeout(3):
                    async with self._uow_factory() as uow:
                        await uow.jobs.release(in_flight, worker=self.worker_id)
                        await uow.commit()
            except Exception as error:  # the leases will simply run out
                log.warning("relay.release_failed", error=str(error))
        log.info("relay.stopped", worker=self.worker_id, released=len(in_flight))

    async def run(self) -> None:
        while True:
            try:
                await self._claim_and_start()
                self._sweep_dispatch()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database may be restarting; the loop must outlive it.
                log.exception("relay.loop.failed")
            await self._wakeups.wait(self._sweep_interval)

    async def _claim_and_start(self) -> None:
        free_albums = self._concurrency - len(self._albums)
        # One batch at a time: a second one running beside it would split the jobs that pile
        # up meanwhile into two smaller batches, paying the fixed costs twice (ADRs 0017, 0023).
        free_batches = 1 - len(self._batches)
        if free_albums <= 0 and free_batches <= 0:
            return
        paged: list[ClaimedJob] = []
        tracks: list[ClaimedJob] = []
        async with self._uow_factory() as uow:
            now = self._clock.now()
            # Claimed by kind, so a claim never takes an album or playlist job it has no slot
            # for, nor makes a track job wait behind them; albums and playlists, both read
            # page by page, share the slots and one claim, so each user's cap on items under
            # way spans both (ADRs 0028, 0029); each claim shared fairly between users.
            if free_albums > 0:
                paged = await uow.jobs.claim(
                    worker=self.worker_id,
                    limit=free_albums,
                    lease=self._lease,
                    now=now,
                    kinds=PAGED_KINDS,
                    per_user_cap=self._albums_per_user,
                )
            if free_batches > 0:
                tracks = await uow.jobs.claim(
                    worker=self.worker_id,
                    limit=self._batch_size,
                    lease=self._lease,
                    now=now,
                    kinds=(LibraryItemKind.TRACK,),
                    per_user_cap=self._tracks_per_user,
                )
            await uow.commit()
        # An album or playlist is a batch of one job in a slot of its own, so that its first
        # page is written as soon as it arrives whatever else runs; the track jobs are one batch.
        for job in paged:
            self._start(ScheduleIngestionCommand((job,), self.worker_id, self._lease), self._albums)
        if tracks:
            command = ScheduleIngestionCommand(tuple(tracks), self.worker_id, self._lease)
            self._start(command, self._batches)

    def _start(self, command: ScheduleIngestionCommand, slots: set[asyncio.Task[None]]) -> None:
        for _ in command.jobs:
            self._metrics.job_claimed()
        task = asyncio.create_task(self._run(command, slots), name="schedule")
        slots.add(task)
        for job in command.jobs:
            self._running[job.item_id] = task

    async def _run(self, command: ScheduleIngestionCommand, slots: set[asyncio.Task[None]]) -> None:
        if len(command.jobs) == 1:  # an album's log lines name it
            structlog.contextvars.bind_contextvars(library_item_id=str(command.jobs[0].item_id))
        try:
            outcomes = await self._schedule(command)
            # One line per batch, not per job: logging was part of the per-job cost.
            counts = Counter(outcome.value for outcome in outcomes.values())
            log.info("relay.batch.ended", jobs=len(command.jobs), **counts)
            log_failures(outcomes)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("relay.batch.crashed", jobs=len(command.jobs))
        finally:
            for job in command.jobs:
                self._running.pop(job.item_id, None)
            slots.discard(_this_task())
            self._wakeups.wake()  # a slot is free: there may be more due jobs

    async def _heartbeat(self) -> None:
        """Renew the leases of the jobs in flight, every third of a lease."""
        interval = self._lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            running = list(self._running)
            if not running:
                continue
            try:
                async with self._uow_factory() as uow:
                    await uow.jobs.extend_leases(
                        running, worker=self.worker_id, lease=self._lease, now=self._clock.now()
                    )
                    await uow.commit()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database may be restarting; the page commit checks
                log.warning("relay.heartbeat.failed", error=str(error))

    def _sweep_dispatch(self) -> None:
        """Retry deferred dispatches in the background, one sweep at a time."""
        if self._dispatching is not None and not self._dispatching.done():
            return
        self._dispatching = asyncio.create_task(self._dispatch_once(), name="dispatch-sweep")

    async def _dispatch_once(self) -> None:
        try:
            report = await self._dispatch()
            if report.sent or report.queue_unavailable:
                log.info(
                    "relay.dispatch.swept",
                    sent=report.sent,
                    queue_unavailable=report.queue_unavailable,
                )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("relay.dispatch.failed")


def _this_task() -> asyncio.Task[None]:
    task = asyncio.current_task()
    assert task is not None  # called from the job's own task
    return cast("asyncio.Task[None]", task)
