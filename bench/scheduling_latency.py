"""Measure scheduling end to end: from an album add's commit to the events the Event API accepts.

    .venv/bin/python -m bench.scheduling_latency [DATABASE_URL] [--latency 0.05] [--runs 3]

The service is wired as in production by its own container and lifespan (relay woken by
NOTIFY, PostgreSQL catalogue cache and shared TIDAL pace, Qdrant local mode, the Inngest SDK),
against a PostgreSQL server (the argument, else TEST_DATABASE_URL; a scratch database is created
on it and dropped afterwards), a loopback TIDAL answering every request after `--latency`
seconds with no rate limit, and a loopback Inngest Event API that notes when it accepted each
event. For albums of 20, 120 and 500 tracks it prints, as medians over `--runs` fresh albums:
the time from the add's transaction to the first and to the last event accepted, to the job
finishing, and the TIDAL, Qdrant and Inngest calls per album; then the same album added by a
second user (cached: catalogue cache and ISRC ledger answer).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from dependency_injector import providers
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from application.ports.track_index import IndexedTrack, TrackHit
from application.use_cases.add_album_to_library import AddAlbumToLibraryCommand
from domain.values import Isrc
from entrypoints import container as wiring
from entrypoints.app import create_app
from entrypoints.container import Container
from entrypoints.settings import Settings
from tests.support.loopback_inngest import LoopbackInngest, ReceivedEvent
from tests.support.loopback_tidal import LoopbackTidal, generated_album
from tests.support.scratch_database import (
    asyncpg_dsn,
    create_scratch_database,
    drop_scratch_database,
)

SIZES = (20, 120, 500)


class TimedInngest(LoopbackInngest):
    """The loopback Event API, noting the wall-clock time each event id was first accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.accepted_at: dict[str, float] = {}
        self._times = threading.Lock()

    def _publish(self, events: list[ReceivedEvent]) -> list[str]:
        ids = super()._publish(events)
        now = time.time()
        with self._times:
            for event in events:
                self.accepted_at.setdefault(event.id, now)
        return ids


class CountingIndex:
    """The production index, counting the lookups the scheduler makes (one Qdrant retrieve
    each, for up to 1,000 ISRCs)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.lookups = 0

    async def indexed(self, isrcs: Sequence[Isrc]) -> set[Isrc]:
        self.lookups += 1
        found: set[Isrc] = await self._inner.indexed(isrcs)
        return found

    async def upsert(self, track: IndexedTrack, vector: Sequence[float]) -> None:
        await self._inner.upsert(track, vector)

    async def search(self, vector: Sequence[float], limit: int) -> list[TrackHit]:
        hits: list[TrackHit] = await self._inner.search(vector, limit)
        return hits


async def counting_track_index(settings: Settings) -> AsyncIterator[CountingIndex]:
    async for index in wiring.track_index(settings):
        yield CountingIndex(index)


@dataclass
class Sample:
    first_ms: float | None
    last_ms: float | None
    done_ms: float
    tidal: int
    qdrant: int
    inngest: int


async def _resolved(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) or asyncio.isfuture(value) else value


async def _job_times(engine: AsyncEngine, item_id: object) -> tuple[str, datetime, datetime]:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT status, created_at, updated_at FROM scheduling_jobs"
                    " WHERE library_item_id = :id"
                ),
                {"id": item_id},
            )
        ).one()
    return str(row[0]), row[1], row[2]


async def _schedule(
    app: Any,
    *,
    user: str,
    album_id: str,
    isrcs: list[str],
    tidal: LoopbackTidal,
    inngest: TimedInngest,
    index: CountingIndex,
    expect_events: bool,
) -> Sample:
    engine: AsyncEngine = app.state.engine
    use_cases = app.state.use_cases
    tidal_before, qdrant_before = tidal.counts.api + tidal.counts.token, index.lookups
    inngest_before = inngest.request_count
    added = await use_cases.add_album(AddAlbumToLibraryCommand(user_id=user, album_id=album_id))
    ids = [f"track-ingestion-requested:{isrc}" for isrc in isrcs]
    deadline = time.monotonic() + 120
    while True:
        status, created, updated = await _job_times(engine, added.item.id)
        arrived = [inngest.accepted_at.get(event_id) for event_id in ids]
        if status != "pending" and (not expect_events or all(arrived)):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"album {album_id} not scheduled within 120 s ({status})")
        await asyncio.sleep(0.005)
    if status != "done":
        raise RuntimeError(f"album {album_id} ended {status}")
    committed = created.timestamp()
    # A cached album's events were the first user's: nothing of this add to time.
    times = [t for t in arrived if t is not None] if expect_events else []
    return Sample(
        first_ms=(min(times) - committed) * 1000 if times else None,
        last_ms=(max(times) - committed) * 1000 if times else None,
        done_ms=(updated.timestamp() - committed) * 1000,
        tidal=tidal.counts.api + tidal.counts.token - tidal_before,
        qdrant=index.lookups - qdrant_before,
        inngest=inngest.request_count - inngest_before,
    )


def _median(values: Sequence[float | None]) -> str:
    present = [v for v in values if v is not None]
    return f"{statistics.median(present):8.0f}" if present else f"{'-':>8}"


def _row(label: str, samples: list[Sample]) -> str:
    calls = samples[-1]
    return (
        f"{label:<18} | {_median([s.first_ms for s in samples])} | "
        f"{_median([s.last_ms for s in samples])} | {_median([s.done_ms for s in samples])} | "
        f"{calls.tidal:5} | {calls.qdrant:6} | {calls.inngest:7}"
    )


async def _measure(database_url: str, latency: float, runs: int) -> None:
    inngest = TimedInngest()
    with (
        tempfile.TemporaryDirectory(prefix="libingest-bench-") as data_dir,
        LoopbackTidal() as tidal,
        inngest,
    ):
        tidal.switches.latency = latency
        settings = Settings(
            libingest_data_dir=Path(data_dir),
            database_url=database_url,
            auth_jwt_secret="bench-secret-that-is-long-enough-0123456789",
            libingest_log_level="WARNING",
            tidal_client_id=tidal.client_id,
            tidal_client_secret=tidal.client_secret,
            tidal_api_base_url=tidal.base_url,
            tidal_auth_url=tidal.auth_url,
            tidal_requests_per_second=1_000_000.0,  # no rate limit: measure the pipeline
            tidal_burst=1_000,
            inngest_dev="1",
            inngest_event_api_base_url=inngest.url,
        )
        container = Container()
        container.settings.override(providers.Object(settings))
        container.track_index.override(providers.Resource(counting_track_index, settings))
        app = create_app(container)
        async with app.router.lifespan_context(app):
            index: CountingIndex = await _resolved(container.track_index())
            # Warm up: the TIDAL token, HTTP connections, the Qdrant collection.
            warm = tidal.add_album(generated_album("9000000", 1, isrc_prefix="QZWRM26"))
            await _schedule(
                app,
                user="warm-up",
                album_id=warm.id,
                isrcs=["QZWRM2600001"],
                tidal=tidal,
                inngest=inngest,
                index=index,
                expect_events=True,
            )
            print(
                f"loopback TIDAL {latency * 1000:.0f} ms per response, no rate limit; "
                f"medians of {runs} fresh albums; times in ms from the add's transaction"
            )
            print(
                f"{'album':<18} | {'first ev':>8} | {'last ev':>8} | {'job done':>8} | "
                f"{'TIDAL':>5} | {'Qdrant':>6} | {'Inngest':>7}"
            )
            for size in SIZES:
                fresh: list[Sample] = []
                cached: list[Sample] = []
                for run in range(runs):
                    prefix = f"QZB{run:02d}{SIZES.index(size):02d}"
                    album = tidal.add_album(
                        generated_album(
                            str(10_000_000 * (run + 1) + size * 1000), size, isrc_prefix=prefix
                        )
                    )
                    isrcs = [t.isrc for t in album.items if t.isrc is not None]
                    for user, sink, fresh_album in (
                        (f"first-{run}", fresh, True),
                        (f"second-{run}", cached, False),
                    ):
                        sample = await _schedule(
                            app,
                            user=user,
                            album_id=album.id,
                            isrcs=isrcs,
                            tidal=tidal,
                            inngest=inngest,
                            index=index,
                            expect_events=fresh_album,
                        )
                        sink.append(sample)
                print(_row(f"{size} tracks", fresh))
                print(_row(f"{size}, 2nd user", cached))
        duplicates = len(inngest.events) - len(inngest.unique_ids)
        print(f"events accepted: {len(inngest.events)}, duplicates: {duplicates}")


async def _scratch_database(server_url: str) -> tuple[str, str]:
    return await create_scratch_database(server_url, "libingest_bench")


async def _drop_database(server_url: str, name: str) -> None:
    await drop_scratch_database(server_url, name)


_dsn = asyncpg_dsn


async def _main(server_url: str, latency: float, runs: int) -> None:
    name, url = await _scratch_database(server_url)
    try:
        await _measure(url, latency, runs)
    finally:
        await _drop_database(server_url, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("database_url", nargs="?", default=os.environ.get("TEST_DATABASE_URL"))
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per TIDAL response")
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    if not arguments.database_url:
        parser.error("give a PostgreSQL URL or set TEST_DATABASE_URL")
    logging.basicConfig(level=logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    asyncio.run(_main(arguments.database_url, arguments.latency, arguments.runs))


if __name__ == "__main__":
    main()
