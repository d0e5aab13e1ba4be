"""Section `processes`: how throughput grows with processes on one PostgreSQL (issue 15).

- Adds: `libingest serve --workers N` (RELAY_ENABLED=false) for N = 1, 2, 4, closed loop at
  32 connections, each request a new track; the repeats go round the counts in turn.
- Drain: N = 1, 2, 4 `libingest relay` processes, started and idle, then a backlog of album jobs
  committed at once (as adds would write them, each with its NOTIFY); the time from the commit
  to the last job done, against the loopback TIDAL (50 ms a response, unpaced), Inngest's Event
  API and Qdrant.

`make bench-processes` (`python -m bench --only processes`) writes docs/benchmarks-processes.md;
`--quick` prints it instead. Every process shares the machine's cores with the load generator,
PostgreSQL and the loopback peers: on a 2-core machine the counts past 2 measure contention."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from adapters.postgres.tables import SCHEDULING_CHANNEL
from bench import harness, load
from bench.rig import CatalogueIds, Rig, token
from tests.support.loopback_tidal import generated_album

DOC = harness.ROOT / "docs" / "benchmarks-processes.md"
COUNTS = (1, 2, 4)
CONNECTIONS = 32
ALBUM_TRACKS = 20  # one TIDAL page


@dataclass
class AddRun:
    per_second: float
    p50_ms: float
    p99_ms: float
    failed: int


@dataclass
class Drain:
    albums: int
    seconds: float
    events: int

    @property
    def albums_per_second(self) -> float:
        return self.albums / self.seconds

    @property
    def tracks_per_second(self) -> float:
        return self.events / self.seconds


@dataclass
class ProcessesReport:
    started_at: datetime
    machine: dict[str, Any]
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    finished_at: datetime | None = None
    adds: dict[int, list[AddRun]] = field(default_factory=dict)
    drains: dict[int, list[Drain]] = field(default_factory=dict)
    add_seconds: float = 0.0
    backlog: int = 0


def measure_adds(rig: Rig, report: ProcessesReport) -> None:
    ids = CatalogueIds()
    adder = token("processes-adder")
    env = {**rig.common, "RELAY_ENABLED": "false"}
    for repeat in range(rig.config.repeats):
        for count in COUNTS:
            print(f"adds, {count} API processes, repeat {repeat + 1} ...", file=sys.stderr)
            with harness.service(env, rig.data_dir / f"serve-{count}", workers=count) as svc:
                url = f"{svc.url}/graphql"

                def run(seconds: float, url: str = url) -> load.LoadResult:
                    return load.run_closed_loop(
                        url,
                        token=adder,
                        kind="track",
                        connections=CONNECTIONS,
                        seconds=seconds,
                        base=ids.next_base(),
                        use_wrk=rig.use_wrk,
                    )

                run(3)  # warm-up: every worker started, its connections and statements made
                result = run(rig.config.add_seconds)
            report.adds.setdefault(count, []).append(
                AddRun(
                    result.per_second,
                    result.p50_ms,
                    result.p99_ms,
                    result.failed + result.socket_errors,
                )
            )


async def _commit_backlog(database_url: str, album_ids: list[str]) -> None:
    """Album items and their pending jobs, committed together, each job's NOTIFY with them."""
    now = datetime.now(UTC)
    items = [(uuid.uuid4(), album_id) for album_id in album_ids]
    connection = await asyncpg.connect(harness.dsn(database_url))
    try:
        async with connection.transaction():
            await connection.copy_records_to_table(
                "library_items",
                records=[(i, "drain-user", "album", a, now) for i, a in items],
                columns=("id", "user_id", "kind", "catalog_id", "added_at"),
            )
            await connection.copy_records_to_table(
                "scheduling_jobs",
                records=[(i, "drain-user", "pending", 0, now, now, now) for i, _ in items],
                columns=(
                    "library_item_id",
                    "user_id",
                    "status",
                    "attempts",
                    "run_after",
                    "created_at",
                    "updated_at",
                ),
            )
            await connection.execute(
                "SELECT pg_notify($1, id::text) FROM unnest($2::uuid[]) AS id",
                SCHEDULING_CHANNEL,
                [i for i, _ in items],
            )
    finally:
        await connection.close()


async def _wait_drained(database_url: str, within: float) -> float:
    """Seconds from the backlog's commit to its last job done (the database's clock)."""
    connection = await asyncpg.connect(harness.dsn(database_url))
    try:
        deadline = time.monotonic() + within
        while await connection.fetchval(
            "SELECT count(*) FROM scheduling_jobs WHERE user_id = 'drain-user'"
            " AND status = 'pending'"
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("the backlog did not drain")
            await asyncio.sleep(0.1)
        seconds = await connection.fetchval(
            "SELECT extract(epoch FROM max(updated_at) - min(created_at)) FROM scheduling_jobs"
            " WHERE user_id = 'drain-user'"
        )
        failed = await connection.fetchval(
            "SELECT count(*) FROM scheduling_jobs WHERE user_id = 'drain-user' AND status <> 'done'"
        )
        if failed:
            raise RuntimeError(f"{failed} backlog jobs did not finish as done")
        await connection.execute(
            "DELETE FROM library_items WHERE user_id = 'drain-user'"
        )  # the jobs go with them (ON DELETE CASCADE)
        return float(seconds)
    finally:
        await connection.close()


def measure_drains(rig: Rig, report: ProcessesReport) -> None:
    backlog = 20 if rig.config.quick else 300
    report.backlog = backlog
    rig.tidal.switches.latency = rig.config.tidal_latency
    run = 0
    for repeat in range(rig.config.repeats):
        for count in COUNTS:
            print(f"drain, {count} relays, repeat {repeat + 1} ...", file=sys.stderr)
            run += 1
            albums = [
                rig.tidal.add_album(
                    generated_album(
                        str(700_000_000 + run * 1_000_000 + n * 1000),
                        ALBUM_TRACKS,
                        isrc_prefix=f"QZ{n:03d}{run:02d}",
                    )
                )
                for n in range(backlog)
            ]
            events_before = len(rig.inngest.unique_ids)
            with harness.relays(rig.unpaced, rig.data_dir / f"relays-{run}", count):
                asyncio.run(_commit_backlog(rig.database_url, [a.id for a in albums]))
                seconds = asyncio.run(_wait_drained(rig.database_url, within=600))
            events = len(rig.inngest.unique_ids) - events_before
            report.drains.setdefault(count, []).append(Drain(backlog, seconds, events))


def run(rig: Rig) -> ProcessesReport:
    report = ProcessesReport(started_at=datetime.now(UTC), machine=harness.machine())
    report.add_seconds = rig.config.add_seconds
    measure_adds(rig, report)
    measure_drains(rig, report)
    report.finished_at = datetime.now(UTC)
    report.load_after = harness.machine()["load"]
    return report


def render(report: ProcessesReport, tool: str) -> str:
    machine = report.machine
    finished = report.finished_at or report.started_at
    minutes = (finished - report.started_at).total_seconds() / 60
    load_before = ", ".join(f"{x:.2f}" for x in machine["load"])
    load_after = ", ".join(f"{x:.2f}" for x in report.load_after)
    lines = [
        "# Benchmarks: more processes on one PostgreSQL",
        "",
        "Written by `make bench-processes` (`.venv/bin/python -m bench --only processes`,"
        " bench/processes.py). Regenerate rather than edit; the notes below the marker are kept.",
        "",
        f"- **Date**: {report.started_at:%Y-%m-%d %H:%M} UTC ({minutes:.1f} min)",
        f"- **Machine**: {machine['nproc']} CPUs ({machine['cpu']}), "
        f"{machine['memory_gib']} GiB memory, Python {machine['python']}. **Every process"
        " below shares these cores** with PostgreSQL, the load generator and the loopback"
        " peers, and with other engineers' tests: past two processes the figures measure"
        " contention for the same two cores, not what more machines would give.",
        f"- **Load average** (1, 5, 15 min) before: {load_before}; after: {load_after}",
        f"- **Load generator**: {tool}, a process of its own.",
        "",
        "## Adds with N API processes on one port",
        "",
        f"`libingest serve --workers N`, `RELAY_ENABLED=false`; closed loop, {CONNECTIONS}"
        f" connections, {report.add_seconds:g} s per run, each add a new track; median of the"
        " runs (each run's own figures in brackets).",
        "",
        "| API processes | adds/s | median ms | p99 ms | failed |",
        "|---:|---:|---:|---:|---:|",
    ]
    for count, runs in sorted(report.adds.items()):
        lines.append(
            f"| {count} | {statistics.median(r.per_second for r in runs):.0f}"
            f" ({', '.join(f'{r.per_second:.0f}' for r in runs)}) |"
            f" {statistics.median(r.p50_ms for r in runs):.2f} |"
            f" {statistics.median(r.p99_ms for r in runs):.2f}"
            f" ({', '.join(f'{r.p99_ms:.1f}' for r in runs)}) |"
            f" {sum(r.failed for r in runs)} |"
        )
    lines += [
        "",
        "## Drain with N relay processes",
        "",
        f"A backlog of {report.backlog} album jobs ({ALBUM_TRACKS} tracks each, one TIDAL page,"
        " uncached, ISRCs new) committed at once while N `libingest relay` processes wait"
        " (each `RELAY_CONCURRENCY=4` album slots); seconds from the commit to the last job"
        " done, by the database's clock; median of the runs.",
        "",
        "| relays | seconds | albums/s | tracks scheduled/s | events |",
        "|---:|---:|---:|---:|---:|",
    ]
    for count, drains in sorted(report.drains.items()):
        lines.append(
            f"| {count} | {statistics.median(d.seconds for d in drains):.2f}"
            f" ({', '.join(f'{d.seconds:.2f}' for d in drains)}) |"
            f" {statistics.median(d.albums_per_second for d in drains):.1f} |"
            f" {statistics.median(d.tracks_per_second for d in drains):.0f} |"
            f" {drains[-1].events} |"
        )
    return "\n".join(lines) + "\n"


NOTES_MARKER = "<!-- notes: kept across runs -->"


def run_alone(rig: Rig) -> None:
    report = run(rig)
    text = render(report, "wrk" if rig.use_wrk else "python-httpx")
    if rig.config.quick or not rig.config.write:
        print(text)
        return
    notes = NOTES_MARKER + "\n"
    if DOC.exists() and NOTES_MARKER in (previous := DOC.read_text()):
        notes = previous[previous.index(NOTES_MARKER) :]
    DOC.write_text(text + "\n" + notes)
    print(text)
