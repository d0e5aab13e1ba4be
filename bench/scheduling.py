"""Section `scheduling`: from an add's commit to the last of its album's events reaching the
Event API, fresh and cached, at each album size (loopback TIDAL with latency, unpaced)."""

from __future__ import annotations

import asyncio
import math
import statistics
import sys
import time
from dataclasses import dataclass

import asyncpg
import httpx

from bench import harness, load, queries
from bench.rig import Rig, token
from tests.support.loopback_tidal import generated_album


@dataclass
class Schedule:
    first_ms: float | None
    last_ms: float | None
    done_ms: float
    tidal: int
    qdrant: int
    inngest: int
    events: int


@dataclass
class SchedulingRow:
    size: int
    cached: bool
    samples: list[Schedule]

    def median(self, attribute: str) -> float | None:
        values = [getattr(s, attribute) for s in self.samples]
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else None

    @property
    def lower_bound_ms(self) -> float:
        return 0.0 if self.cached else math.ceil(self.size / 20) * 50.0


async def _add(client: httpx.AsyncClient, bearer: str, kind: str, catalog_id: str) -> str:
    response = await client.post(
        "/graphql",
        json={"query": load.MUTATION[kind], "variables": {"id": catalog_id}},
        headers={"authorization": f"Bearer {bearer}"},
    )
    payload = response.json()
    result = payload["data"][f"add{kind.capitalize()}ToLibrary"]
    return str(result["item"]["id"])


async def _schedule_one(
    rig: Rig,
    pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    *,
    user: str,
    album_id: str,
    isrcs: list[str],
    expect_events: bool,
) -> Schedule:
    tidal, inngest, qdrant = rig.tidal, rig.inngest, rig.qdrant
    tidal_before = tidal.counts.api + tidal.counts.token
    qdrant_before = len(qdrant.retrieve_requests)
    inngest_before = inngest.request_count
    item_id = await _add(client, token(user), "album", album_id)
    ids = [f"track-ingestion-requested:{isrc}" for isrc in isrcs]
    deadline = time.monotonic() + 120
    while True:
        job = await queries.job(pool, item_id)
        arrived = [inngest.accepted_at.get(event_id) for event_id in ids]
        if job is not None and job[0] != "pending" and (not expect_events or all(arrived)):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"album {album_id} not scheduled within 120 s")
        await asyncio.sleep(0.005)
    assert job is not None  # the loop ends only on a job that is no longer pending
    status, created_at, updated_at = job
    if status != "done":
        raise RuntimeError(f"album {album_id} ended {status}")
    committed = created_at.timestamp()
    times = [t for t in arrived if t is not None] if expect_events else []
    return Schedule(
        first_ms=(min(times) - committed) * 1000 if times else None,
        last_ms=(max(times) - committed) * 1000 if times else None,
        done_ms=(updated_at.timestamp() - committed) * 1000,
        tidal=tidal.counts.api + tidal.counts.token - tidal_before,
        qdrant=len(qdrant.retrieve_requests) - qdrant_before,
        inngest=inngest.request_count - inngest_before,
        events=len(times),
    )


async def _measure(rig: Rig, service_url: str) -> list[SchedulingRow]:
    config = rig.config
    rows: list[SchedulingRow] = []
    pool = await asyncpg.create_pool(rig.database_url, min_size=1, max_size=2)
    try:
        async with httpx.AsyncClient(base_url=service_url, timeout=30) as client:
            rig.tidal.switches.latency = config.tidal_latency
            warm = rig.tidal.add_album(generated_album("8000000", 1, isrc_prefix="QZWRM26"))
            await _schedule_one(
                rig,
                pool,
                client,
                user="warm-up",
                album_id=warm.id,
                isrcs=["QZWRM2600001"],
                expect_events=True,
            )
            for index, size in enumerate(config.sizes):
                fresh: list[Schedule] = []
                cached: list[Schedule] = []
                for run in range(config.scheduling_runs):
                    album = rig.tidal.add_album(
                        generated_album(
                            str(10_000_000 * (run + 1) + index * 1_000_000),
                            size,
                            isrc_prefix=f"QZS{run:02d}{index:02d}",
                        )
                    )
                    isrcs = [t.isrc for t in album.items if t.isrc is not None]
                    for user, sink, expect in (
                        (f"first-{run}", fresh, True),
                        (f"second-{run}", cached, False),
                    ):
                        sink.append(
                            await _schedule_one(
                                rig,
                                pool,
                                client,
                                user=user,
                                album_id=album.id,
                                isrcs=isrcs,
                                expect_events=expect,
                            )
                        )
                rows.append(SchedulingRow(size, False, fresh))
                rows.append(SchedulingRow(size, True, cached))
                print(
                    f"  scheduling {size:4} tracks: last event "
                    f"{rows[-2].median('last_ms') or 0:.0f} ms",
                    file=sys.stderr,
                )
    finally:
        await pool.close()
    return rows


def measure(rig: Rig, service_url: str) -> list[SchedulingRow]:
    """Each size: fresh albums first added by one user, then added again by another."""
    return asyncio.run(_measure(rig, service_url))


def run(rig: Rig) -> list[SchedulingRow]:
    """The section on an unpaced service of its own."""
    with harness.service(rig.unpaced, rig.data_dir / "b") as svc:
        return measure(rig, svc.url)


def run_alone(rig: Rig) -> None:
    for row in run(rig):
        print(row, file=sys.stderr)
