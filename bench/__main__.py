"""The benchmark suite (issue 7): `make bench`, or

    .venv/bin/python -m bench [--quick] [--no-write] [--repeats 3] [--add-seconds 5]
                              [--sustained-seconds 60] [--users 200]

Starts the service as users run it (`libingest serve` in a process of its own, on a fresh
database), a loopback TIDAL (latency, token bucket), a loopback Inngest Event API and a loopback
Qdrant in this process, and the floor (bench/floor_app.py) under uvicorn; drives them with wrk
(or, without it, a Python load generator in a process of its own); and rewrites
docs/benchmarks.md and docs/benchmarks-scheduling.png. `--no-write` prints the report instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from adapters.auth.jwt_tokens import JwtAuthenticator, JwtSettings
from bench import harness, load
from bench.report import Report, write_report
from tests.support.loopback_qdrant import LoopbackQdrant
from tests.support.loopback_tidal import generated_album


@dataclass
class Config:
    repeats: int = 3
    add_seconds: float = 5.0
    connections: tuple[int, ...] = (1, 16, 64)
    sizes: tuple[int, ...] = (1, 20, 120, 500)
    scheduling_runs: int = 3
    tidal_latency: float = 0.05
    sustained_seconds: float = 60.0
    users: int = 200
    think: float = 1.0
    albums: int = 100
    tidal_rate: float = 50.0
    tidal_burst: int = 50
    quick: bool = False


QUICK = Config(
    repeats=1,
    add_seconds=1.0,
    connections=(2,),
    sizes=(1, 20),
    scheduling_runs=1,
    sustained_seconds=3.0,
    users=10,
    think=0.2,
    albums=4,
    quick=True,
)


def _token(user: str) -> str:
    authenticator = JwtAuthenticator(JwtSettings(secret=harness.JWT_SECRET))
    return authenticator.issue(user, lifetime=timedelta(hours=6))


def _loopback_env(
    tidal: harness.RateLimitedTidal, inngest: harness.TimedInngest, qdrant: LoopbackQdrant
) -> dict[str, str]:
    return {
        "TIDAL_CLIENT_ID": tidal.client_id,
        "TIDAL_CLIENT_SECRET": tidal.client_secret,
        "TIDAL_API_BASE_URL": tidal.base_url,
        "TIDAL_AUTH_URL": tidal.auth_url,
        "INNGEST_DEV": "1",
        "INNGEST_EVENT_API_BASE_URL": inngest.url,
        "QDRANT_URL": qdrant.url,
    }


# -- add latency and throughput -----------------------------------------------------------------


@dataclass
class AddRow:
    target: str  # "addTrackToLibrary", "floor: item + job + notify", ...
    connections: int
    runs: list[load.LoadResult] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        values = [
            run.per_second if attribute == "per_second" else float(getattr(run, attribute))
            for run in self.runs
        ]
        return statistics.median(values)


_next_base = 10**9


def _base() -> int:
    """A catalogue-id range no earlier run used (each run uses < 10^8 ids per thread)."""
    global _next_base
    _next_base += 10**9
    return _next_base


def measure_adds(
    config: Config, service_url: str, floor_url: str, use_wrk: bool
) -> tuple[list[AddRow], AddRow]:
    token = _token("bench-adder")
    targets = [
        ("addTrackToLibrary", f"{service_url}/graphql", "track"),
        ("addAlbumToLibrary", f"{service_url}/graphql", "album"),
        ("floor: item + job + notify", f"{floor_url}/add", "track"),
        ("floor: bare INSERT + COMMIT", f"{floor_url}/insert", "track"),
    ]
    rows = {
        (name, connections): AddRow(name, connections)
        for name, _, _ in targets
        for connections in config.connections
    }

    def run(url: str, kind: str, connections: int, seconds: float, fixed: int = 0) -> Any:
        return load.run_closed_loop(
            url,
            token=token,
            kind=kind,
            connections=connections,
            seconds=seconds,
            base=_base(),
            fixed=fixed,
            use_wrk=use_wrk,
        )

    for _, url, kind in [] if config.quick else targets:  # warm up: connections, caches
        run(url, kind, 16, 2)
    # Repeats interleave the targets, so drifting background load hits them all alike.
    for repeat in range(config.repeats):
        for connections in config.connections:
            for name, url, kind in targets:
                result = run(url, kind, connections, config.add_seconds)
                rows[(name, connections)].runs.append(result)
                print(
                    f"  [{repeat + 1}/{config.repeats}] {name:<28} c={connections:<3} "
                    f"{result.per_second:7.0f}/s p50 {result.p50_ms:6.2f} "
                    f"p99 {result.p99_ms:6.2f} ms failed {result.failed}",
                    file=sys.stderr,
                )
    readd = AddRow("addTrackToLibrary, re-add", 16)
    for _ in range(config.repeats):
        # 1,000 ids cycled: the first 1,000 requests add, every later one is a re-add.
        readd.runs.append(
            run(f"{service_url}/graphql", "track", 16, config.add_seconds, fixed=1000)
        )
    return list(rows.values()), readd


# -- scheduling latency -------------------------------------------------------------------------


@dataclass
class Schedule:
    first_ms: float | None
    last_ms: float | None
    done_ms: float
    tidal: int
    qdrant: int
    inngest: int
    events: int


async def _add(client: httpx.AsyncClient, token: str, kind: str, catalog_id: str) -> str:
    response = await client.post(
        "/graphql",
        json={"query": load.MUTATION[kind], "variables": {"id": catalog_id}},
        headers={"authorization": f"Bearer {token}"},
    )
    payload = response.json()
    result = payload["data"][f"add{kind.capitalize()}ToLibrary"]
    return str(result["item"]["id"])


async def _schedule_one(
    pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    *,
    user: str,
    album_id: str,
    isrcs: list[str],
    tidal: harness.RateLimitedTidal,
    inngest: harness.TimedInngest,
    qdrant: LoopbackQdrant,
    expect_events: bool,
) -> Schedule:
    tidal_before = tidal.counts.api + tidal.counts.token
    qdrant_before = len(qdrant.retrieve_requests)
    inngest_before = inngest.request_count
    item_id = await _add(client, _token(user), "album", album_id)
    ids = [f"track-ingestion-requested:{isrc}" for isrc in isrcs]
    deadline = time.monotonic() + 120
    while True:
        row = await pool.fetchrow(
            "SELECT status, created_at, updated_at FROM scheduling_jobs"
            " WHERE library_item_id = $1::uuid",
            item_id,
        )
        arrived = [inngest.accepted_at.get(event_id) for event_id in ids]
        if row is not None and row["status"] != "pending" and (not expect_events or all(arrived)):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"album {album_id} not scheduled within 120 s")
        await asyncio.sleep(0.005)
    if row["status"] != "done":
        raise RuntimeError(f"album {album_id} ended {row['status']}")
    committed = row["created_at"].timestamp()
    times = [t for t in arrived if t is not None] if expect_events else []
    return Schedule(
        first_ms=(min(times) - committed) * 1000 if times else None,
        last_ms=(max(times) - committed) * 1000 if times else None,
        done_ms=(row["updated_at"].timestamp() - committed) * 1000,
        tidal=tidal.counts.api + tidal.counts.token - tidal_before,
        qdrant=len(qdrant.retrieve_requests) - qdrant_before,
        inngest=inngest.request_count - inngest_before,
        events=len(times),
    )


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


async def measure_scheduling(
    config: Config,
    database_url: str,
    service_url: str,
    tidal: harness.RateLimitedTidal,
    inngest: harness.TimedInngest,
    qdrant: LoopbackQdrant,
) -> list[SchedulingRow]:
    rows: list[SchedulingRow] = []
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        async with httpx.AsyncClient(base_url=service_url, timeout=30) as client:
            tidal.switches.latency = config.tidal_latency
            warm = tidal.add_album(generated_album("8000000", 1, isrc_prefix="QZWRM26"))
            await _schedule_one(
                pool,
                client,
                user="warm-up",
                album_id=warm.id,
                isrcs=["QZWRM2600001"],
                tidal=tidal,
                inngest=inngest,
                qdrant=qdrant,
                expect_events=True,
            )
            for index, size in enumerate(config.sizes):
                fresh: list[Schedule] = []
                cached: list[Schedule] = []
                for run in range(config.scheduling_runs):
                    album = tidal.add_album(
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
                                pool,
                                client,
                                user=user,
                                album_id=album.id,
                                isrcs=isrcs,
                                tidal=tidal,
                                inngest=inngest,
                                qdrant=qdrant,
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


# -- sustained load ----------------------------------------------------------------------------


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


async def _pending_jobs(pool: asyncpg.Pool) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM scheduling_jobs j JOIN library_items i"
            " ON i.id = j.library_item_id WHERE i.user_id LIKE 'user-%' AND j.status = 'pending'"
        )
        or 0
    )


async def _undispatched(pool: asyncpg.Pool) -> int:
    return int(
        await pool.fetchval("SELECT count(*) FROM isrc_ledger WHERE state = 'requested'") or 0
    )


async def _sustained_checks(pool: asyncpg.Pool) -> tuple[dict[str, int], int, int]:
    jobs = {
        str(row["status"]): int(row["n"])
        for row in await pool.fetch(
            "SELECT j.status, count(*) AS n FROM scheduling_jobs j JOIN library_items i"
            " ON i.id = j.library_item_id WHERE i.user_id LIKE 'user-%' GROUP BY j.status"
        )
    }
    missing = await pool.fetchval(
        "SELECT count(DISTINCT t.isrc) FROM item_tracks t JOIN library_items i"
        " ON i.id = t.library_item_id WHERE i.user_id LIKE 'user-%' AND t.isrc IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM isrc_ledger l WHERE l.isrc = t.isrc)"
    )
    return jobs, int(missing or 0), await _undispatched(pool)


def measure_sustained(
    config: Config,
    database_url: str,
    service: harness.Process,
    tidal: harness.RateLimitedTidal,
    inngest: harness.TimedInngest,
    qdrant: LoopbackQdrant,
) -> Sustained:
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
        "tokens": [_token(f"user-{number}") for number in range(config.users)],
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

        async def drain() -> tuple[dict[str, int], int, int]:
            pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
            try:
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline:
                    if not await _pending_jobs(pool) and not await _undispatched(pool):
                        break
                    await asyncio.sleep(0.1)
                return await _sustained_checks(pool)
            finally:
                await pool.close()

        jobs, missing, undispatched = asyncio.run(drain())
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
    import subprocess

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


# -- the run -----------------------------------------------------------------------------------


@dataclass
class Rig:
    """What every section runs against: a scratch database and the loopback peers."""

    config: Config
    database_url: str
    database_where: str
    data_dir: Path
    tidal: harness.RateLimitedTidal
    inngest: harness.TimedInngest
    qdrant: LoopbackQdrant

    @property
    def common(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.database_url,
            **_loopback_env(self.tidal, self.inngest, self.qdrant),
        }

    @property
    def unpaced(self) -> dict[str, str]:
        return {**self.common, "TIDAL_REQUESTS_PER_SECOND": "1000000", "TIDAL_BURST": "1000"}

    @property
    def paced(self) -> dict[str, str]:
        return {
            **self.common,
            "TIDAL_REQUESTS_PER_SECOND": f"{self.config.tidal_rate:g}",
            "TIDAL_BURST": str(self.config.tidal_burst),
        }

    def adds(self, use_wrk: bool) -> tuple[list[AddRow], AddRow]:
        # The request path alone: with the relay on, it would spend the same 2 cores
        # scheduling every add (the sustained run measures that); the floor has no relay.
        with (
            harness.service({**self.common, "RELAY_ENABLED": "false"}, self.data_dir / "a") as svc,
            harness.floor(self.database_url) as floor_process,
        ):
            return measure_adds(self.config, svc.url, floor_process.url, use_wrk)

    def scheduling(self, service_url: str) -> list[SchedulingRow]:
        return asyncio.run(
            measure_scheduling(
                self.config, self.database_url, service_url, self.tidal, self.inngest, self.qdrant
            )
        )

    def sustained(self, service: harness.Process) -> Sustained:
        return measure_sustained(
            self.config, self.database_url, service, self.tidal, self.inngest, self.qdrant
        )


@contextlib.contextmanager
def _rig(config: Config) -> Iterator[Rig]:
    inngest = harness.TimedInngest()
    qdrant = LoopbackQdrant(collection="tracks")
    with (
        harness.scratch_database() as (database_url, database_where),
        tempfile.TemporaryDirectory(prefix="libingest-bench-data-") as data_dir,
        harness.RateLimitedTidal() as tidal,
        inngest,
        qdrant,
    ):
        yield Rig(config, database_url, database_where, Path(data_dir), tidal, inngest, qdrant)


def run_only(config: Config, section: str) -> None:
    """One section, printed as it runs and not written: for iterating on one goal."""
    use_wrk = load.wrk_available() if config.quick else load.ensure_wrk()
    with _rig(config) as rig:
        if section == "adds":
            rig.adds(use_wrk)
        elif section == "scheduling":
            with harness.service(rig.unpaced, rig.data_dir / "b") as svc:
                for row in rig.scheduling(svc.url):
                    print(row, file=sys.stderr)
        else:
            rig.tidal.switches.latency = config.tidal_latency
            with harness.service(rig.paced, rig.data_dir / "c") as svc:
                print(rig.sustained(svc), file=sys.stderr)


def run(config: Config, *, write: bool) -> Report:
    started_at = datetime.now(UTC)
    machine = harness.machine()
    # The quick run (the smoke test) installs nothing: wrk if present, else the Python one.
    use_wrk = load.wrk_available() if config.quick else load.ensure_wrk()
    print(f"load generator: {'wrk' if use_wrk else 'python-httpx'}", file=sys.stderr)
    with _rig(config) as rig:
        postgres_version = harness.server_version(rig.database_url)
        if config.quick:
            # One service for every phase: starting one costs seconds of imports.
            with (
                harness.service(rig.unpaced, rig.data_dir / "q") as svc,
                harness.floor(rig.database_url) as floor_process,
            ):
                add_rows, readd = measure_adds(config, svc.url, floor_process.url, use_wrk)
                scheduling = rig.scheduling(svc.url)
                sustained = rig.sustained(svc)
        else:
            print("adds ...", file=sys.stderr)
            add_rows, readd = rig.adds(use_wrk)
            harness.empty_library(rig.database_url)
            print("scheduling ...", file=sys.stderr)
            with harness.service(rig.unpaced, rig.data_dir / "b") as svc:
                scheduling = rig.scheduling(svc.url)
            print("sustained ...", file=sys.stderr)
            rig.tidal.switches.latency = config.tidal_latency
            with harness.service(rig.paced, rig.data_dir / "c") as svc:
                sustained = rig.sustained(svc)
        database_where = rig.database_where
    report = Report(
        started_at=started_at,
        finished_at=datetime.now(UTC),
        machine=machine,
        load_after=harness.machine()["load"],
        command=" ".join(["python -m bench", *sys.argv[1:]]),
        database=f"{database_where}, PostgreSQL {postgres_version}",
        tool="wrk" if use_wrk else "python-httpx (wrk not available)",
        config=config,
        adds=add_rows,
        readd=readd,
        scheduling=scheduling,
        sustained=sustained,
    )
    write_report(report, write=write)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny configuration (smoke test)")
    parser.add_argument("--no-write", action="store_true", help="print the report instead")
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--add-seconds", type=float)
    parser.add_argument("--sustained-seconds", type=float)
    parser.add_argument("--users", type=int)
    parser.add_argument("--scheduling-runs", type=int)
    parser.add_argument(
        "--only",
        choices=("adds", "scheduling", "sustained"),
        help="run one section and print it (docs/benchmarks.md is not written)",
    )
    parser.add_argument("--connections", help="comma-separated, e.g. 1,16")
    arguments = parser.parse_args()
    config = QUICK if arguments.quick else Config()
    for name in ("repeats", "add_seconds", "sustained_seconds", "users", "scheduling_runs"):
        value = getattr(arguments, name)
        if value is not None:
            setattr(config, name, value)
    if arguments.connections:
        config.connections = tuple(int(n) for n in arguments.connections.split(","))
    if arguments.only:
        run_only(config, arguments.only)
        return
    run(config, write=not arguments.no_write)


if __name__ == "__main__":
    main()
