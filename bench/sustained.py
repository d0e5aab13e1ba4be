"""Section `sustained`: users adding albums and tracks for a minute with think time, on the
paced service (TIDAL's token bucket on), then draining; what it cost and whether anything was
lost or sent twice."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench import harness, load, queries
from bench.rig import Config, Rig, token
from tests.support.loopback_tidal import generated_album


@dataclass
class Sustained:
    users: int
    seconds: float
    think: float
    adds: int
    adds_per_second: float
    p50_ms: float
    p99_ms: float
    failed: int
    errors: int
    events: int
    events_per_second: float
    drain_seconds: float
    jobs: dict[str, int]
    missing_from_ledger: int
    ledger_not_dispatched: int
    duplicates: int
    tidal_calls: int
    tidal_429: int
    qdrant_calls: int
    qdrant_ids: int
    inngest_requests: int
    peak_rss_mib: float
    start_rss_mib: float
    tool: str = "wrk"


async def _drain(database_url: str) -> tuple[dict[str, int], int, int]:
    """Wait (up to 300 s) until every job is done and every request sent; then the jobs by
    status, the ISRCs missing from the ledger, and the requests never sent."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if not await queries.pending_jobs(pool) and not await queries.undispatched(pool):
                break
            await asyncio.sleep(0.1)
        return (
            await queries.jobs_by_status(pool),
            await queries.missing_from_ledger(pool),
            await queries.undispatched(pool),
        )
    finally:
        await pool.close()


def measure(rig: Rig, service: harness.Process) -> Sustained:
    config, tidal, inngest, qdrant = rig.config, rig.tidal, rig.inngest, rig.qdrant
    albums = [
        tidal.add_album(
            generated_album(
                str(500_000_000 + number * 1000),
                (1, 8, 12, 20, 40, 120)[number % 6],
                isrc_prefix=f"QZU{number // 100:02d}{number % 100:02d}",
            )
        )
        for number in range(config.albums)
    ]
    catalog = {
        "albums": [album.id for album in albums],
        "tracks": [item.id for album in albums for item in album.items],
        "tokens": [token(f"user-{number}") for number in range(config.users)],
    }
    use_wrk = load.wrk_available()
    events_before = len(inngest.events)
    if not config.quick:  # the quick run's service is unpaced: no bucket to honour
        tidal.bucket = harness.TokenBucket(config.tidal_rate, config.tidal_burst)
    tidal_before = tidal.counts.api + tidal.counts.token
    refused_before = tidal.refused
    lookups_before = len(qdrant.retrieve_requests)
    inngest_requests_before = inngest.request_count
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(catalog, file)
    started = time.time()
    with harness.PeakRss(service.pid) as rss:
        completed = load_users(service.url, file.name, config, use_wrk=use_wrk)
        result = json.loads(completed)
        jobs, missing, undispatched = asyncio.run(_drain(rig.database_url))
    Path(file.name).unlink(missing_ok=True)
    tidal.bucket = None
    new_events = inngest.events[events_before:]
    accepted = [inngest.accepted_at.get(event.id, started) for event in new_events]
    last = max(accepted, default=started)
    window = max(last - started, 1e-9)
    return Sustained(
        users=config.users,
        seconds=result["seconds"],
        think=config.think,
        adds=result["adds"],
        adds_per_second=result["adds"] / result["seconds"],
        p50_ms=result["p50_ms"],
        p99_ms=result["p99_ms"],
        failed=result["failed"],
        errors=result["errors"],
        events=len(new_events),
        events_per_second=len(new_events) / window,
        drain_seconds=max(0.0, last - started - result["seconds"]),
        jobs=jobs,
        missing_from_ledger=missing,
        ledger_not_dispatched=undispatched,
        duplicates=len(inngest.events) - len(inngest.unique_ids),
        tidal_calls=tidal.counts.api + tidal.counts.token - tidal_before,
        tidal_429=tidal.refused - refused_before,
        qdrant_calls=len(qdrant.retrieve_requests) - lookups_before,
        qdrant_ids=sum(len(ids) for ids in qdrant.retrieve_requests[lookups_before:]),
        inngest_requests=inngest.request_count - inngest_requests_before,
        peak_rss_mib=rss.peak_bytes / 2**20,
        start_rss_mib=rss.start_bytes / 2**20,
        tool="wrk" if use_wrk else "python-httpx",
    )


def load_users(url: str, catalog: str, config: Config, *, use_wrk: bool) -> str:
    """The users' run as one JSON line: wrk when present (its C event loop leaves the cores to
    the service), else the Python generator in a process of its own."""
    if use_wrk:
        with open(catalog) as file:
            entries = json.load(file)
        return json.dumps(
            load.run_users_with_wrk(
                f"{url}/graphql",
                catalog=entries,
                seconds=config.sustained_seconds,
                think=config.think,
                album_share=0.3,
            )
        )
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.load",
            "users",
            f"{url}/graphql",
            "--catalog",
            catalog,
            "--seconds",
            str(config.sustained_seconds),
            "--think",
            str(config.think),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=config.sustained_seconds + 120,
    )
    return completed.stdout.splitlines()[-1]


def run(rig: Rig) -> Sustained:
    """The section on a paced service of its own, TIDAL answering after its latency."""
    rig.tidal.switches.latency = rig.config.tidal_latency
    with harness.service(rig.paced, rig.data_dir / "c") as svc:
        return measure(rig, svc)


def run_alone(rig: Rig) -> None:
    print(run(rig), file=sys.stderr)
