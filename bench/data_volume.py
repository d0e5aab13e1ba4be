"""Section `volume`: what each request and each relay statement costs as the database grows
(issue 15). Not part of `make bench`: the 10^6 level loads about 8 million rows, which takes
minutes on its own. `make bench-volume` (`python -m bench --only volume`) runs it and writes
docs/benchmarks-volume.md; `--quick` stops at 10^4 items and prints the report instead.

Services are `libingest serve` with RELAY_ENABLED=false and the default quotas.
The probe user (1,000 items, bench/volume_data.py) is loaded into two databases, each with its
own service: the twin keeps the probe alone (the fresh database); into the other, background
users are loaded with COPY up to 10^4, 10^5 and 10^6 library items, and the same measurements
are taken at each level, on both: the requests over HTTP (sequential, one keep-alive
connection), and every statement those requests and the relay run, as EXPLAIN (ANALYZE, BUFFERS)
with the parameters the product sent, each plan checked for a sequential scan of a big table.
Nothing here runs ANALYZE: the plans are the ones the server makes with what its own autovacuum
(or, with it off, nothing) left in the statistics."""

from __future__ import annotations

import asyncio
import functools
import re
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from adapters.postgres.backlog import backlog_on
from adapters.postgres.database import ENGINE_SERVER_SETTINGS, SERVER_SETTINGS, async_url
from adapters.postgres.ledger import PostgresIsrcLedger
from adapters.postgres.library import PostgresLibraryRepository
from adapters.postgres.library_additions import _ADD
from adapters.postgres.progress import PostgresProgressReader
from adapters.postgres.scheduling_jobs import PostgresSchedulingJobs
from application.ports.scheduling import ItemTrackLink
from application.ports.unit_of_work import LibraryPosition
from application.use_cases.cursors import encode_cursor
from bench import harness, volume_data
from bench.rig import Rig, token
from domain.fair_share import ALBUMS_PER_USER, TRACKS_PER_USER
from domain.ingestion import IngestionRequest
from domain.library import PAGED_KINDS, LibraryItemKind
from domain.values import CatalogId, Isrc, LibraryItemId, UserId

DOC = harness.ROOT / "docs" / "benchmarks-volume.md"
LEVELS = (10_000, 100_000, 1_000_000)
QUICK_LEVELS = (10_000,)
BIG_TABLES = frozenset(
    {
        "library_items",
        "scheduling_jobs",
        "isrc_ledger",
        "item_tracks",
        "catalog_albums",
        "catalog_tracks",
    }
)
# The request path's goal (issue 15): no figure past this multiple of its fresh value.
GOAL_RATIO = 1.5

_PROGRESS = (
    "ingestion { state tracksTotal tracksRequested tracksIndexed tracksSkipped tracksFailed }"
)
ADD = (
    "mutation($id: ID!) { addTrackToLibrary(trackId: $id) { __typename"
    " ... on AddToLibrarySuccess { alreadyInLibrary item { id } } } }"
)
PAGE = (
    "query($after: String) { library(first: 50, after: $after) { totalCount"
    " pageInfo { hasNextPage endCursor } edges { cursor node { id kind catalogId title"
    f" artistNames addedAt {_PROGRESS} }} }} }} }}"
)
ITEM = f"query($id: ID!) {{ libraryItem(id: $id) {{ id title {_PROGRESS} }} }}"


@dataclass
class Timing:
    median_ms: float
    p99_ms: float
    samples: int


@dataclass
class Explained:
    statement: str
    plan: str
    runs_ms: list[float]  # planning + execution, per run
    seq_scans: list[str]
    # The same statement under plan_cache_mode = force_generic_plan: the plan a prepared
    # statement (asyncpg prepares every one) may switch to after five executions.
    generic_ms: float = 0.0
    generic_scans: list[str] = field(default_factory=list)
    generic_plan: str = ""

    @property
    def median_ms(self) -> float:
        return statistics.median(self.runs_ms)


@dataclass
class Level:
    label: str
    library_items: int
    rows: dict[str, int]
    load_seconds: float
    requests: dict[str, Timing]
    twin_requests: dict[str, Timing]  # the probe alone, measured in the same seconds
    queries: dict[str, list[Explained]]
    twin_queries: dict[str, list[Explained]]
    statistics: dict[str, str]
    sizes_mib: dict[str, float]


@dataclass
class VolumeReport:
    started_at: datetime
    finished_at: datetime
    machine: dict[str, Any]
    load_after: tuple[float, float, float]
    database: str
    levels: list[Level] = field(default_factory=list)


# ---------------------------------------------------------------- requests over HTTP


def _graphql(client: httpx.Client, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/graphql", json={"query": query, "variables": variables})
    payload: dict[str, Any] = response.json()
    if response.status_code != 200 or payload.get("errors"):
        raise RuntimeError(f"unexpected answer: {response.status_code} {response.text[:500]}")
    return payload


def _add(_: httpx.Client, adder: httpx.Client, *, catalog_id: str) -> object:
    return _graphql(adder, ADD, {"id": catalog_id})


def _timed(samples: list[float], call: Callable[[], object]) -> None:
    started = time.perf_counter()
    call()
    samples.append((time.perf_counter() - started) * 1000)


def _timing(samples: list[float]) -> Timing:
    ordered = sorted(samples)
    return Timing(
        statistics.median(ordered),
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        len(ordered),
    )


REQUESTS = (
    "add (new track)",
    "add (re-add)",
    "library(first: 50), first page",
    "library(first: 50), after 950 items",
    "libraryItem with progress (a track)",
    "libraryItem with progress (500-track album)",
)


def measure_requests(
    urls: tuple[str, str], probe: volume_data.Probe, *, level: int, per_request: int
) -> tuple[dict[str, Timing], dict[str, Timing]]:
    """Each request `per_request` times after a warm-up, against the twin (probe alone) and the
    loaded service in turn, request by request: the two medians are taken in the same seconds,
    so their ratio does not move with the machine's load."""
    deep_cursor = encode_cursor(
        LibraryPosition(probe.deep_cursor_position[0], LibraryItemId(probe.deep_cursor_position[1]))
    )

    def client(url: str, user: str) -> httpx.Client:
        # A long timeout: a slow request is a figure to report, not a reason to stop the run.
        return httpx.Client(
            base_url=url, headers={"authorization": f"Bearer {token(user)}"}, timeout=120
        )

    probers = [client(url, volume_data.PROBE_USER) for url in urls]
    # A user of their own per level: the add's pending cap counts the user's due jobs.
    adders = [client(url, f"adder-{level}") for url in urls]
    first_id = 7_000_000_000 + level * 10
    samples: list[dict[str, list[float]]] = [{name: [] for name in REQUESTS} for _ in urls]

    sides = list(zip(probers, adders, samples, strict=True))

    def both(name: str, call: Callable[[httpx.Client, httpx.Client], object]) -> None:
        # Which side goes first alternates: the second of two requests in a row was measured
        # about 10% slower, whichever service it went to.
        sides.reverse()
        for prober, adder, side in sides:
            _timed(side[name], functools.partial(call, prober, adder))

    try:
        for n in range(10):  # warm-up: connections, prepared statements
            for prober, adder in zip(probers, adders, strict=True):
                _graphql(adder, ADD, {"id": str(first_id - 100 + n)})
                _graphql(prober, PAGE, {"after": None})
                _graphql(prober, ITEM, {"id": str(probe.album_id)})
        rounds = 3
        per_round = max(1, per_request // rounds)
        next_id = first_id
        for _ in range(rounds):
            added = [str(next_id + k) for k in range(per_round)]
            next_id += per_round
            for name in ("add (new track)", "add (re-add)"):
                for catalog_id in added:
                    both(name, functools.partial(_add, catalog_id=catalog_id))
            for _ in range(per_round):
                both(
                    "library(first: 50), first page",
                    lambda p, _: _graphql(p, PAGE, {"after": None}),
                )
                both(
                    "library(first: 50), after 950 items",
                    lambda p, _: _graphql(p, PAGE, {"after": deep_cursor}),
                )
                both(
                    "libraryItem with progress (a track)",
                    lambda p, _: _graphql(p, ITEM, {"id": str(probe.track_item_id)}),
                )
                both(
                    "libraryItem with progress (500-track album)",
                    lambda p, _: _graphql(p, ITEM, {"id": str(probe.album_id)}),
                )
    finally:
        for c in (*probers, *adders):
            c.close()
    twin, loaded = ({name: _timing(v) for name, v in side.items()} for side in samples)
    return twin, loaded


# ---------------------------------------------------------------- statements and their plans

_SEQ_SCAN = re.compile(r"Seq Scan on (\w+)")
_TIME = re.compile(r"(Planning|Execution) Time: ([0-9.]+) ms")


class StatementCapture:
    """The statements (and their parameters) the product's adapters send through an engine."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Any]] = []

    def __call__(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if not many:
            self.statements.append((statement, parameters))


Scenario = Callable[[AsyncConnection], Awaitable[object]]


def scenarios(probe: volume_data.Probe, page_ids: list[LibraryItemId]) -> dict[str, Scenario]:
    """What the request path and the relay run, through the product's own adapters."""
    owner = UserId(volume_data.PROBE_USER)
    deep = LibraryPosition(
        probe.deep_cursor_position[0], LibraryItemId(probe.deep_cursor_position[1])
    )
    worker = "bench-volume"
    lease = timedelta(seconds=15)
    isrcs = [Isrc(value) for value in probe.album_isrcs]
    requests = [
        IngestionRequest(
            isrc=Isrc(volume_data.isrc("NEW", n)),
            track_id=CatalogId(str(6_000_000_000 + n)),
            album_id=None,
            library_item_id=LibraryItemId(probe.album_id),
        )
        for n in range(50)
    ]

    async def relay(connection: AsyncConnection) -> None:
        # What one turn of the relay runs (entrypoints/relay.py, the scheduling use case): its
        # two claims (album jobs for its free slots, track jobs for a batch), the items they
        # name, their links, the ledger's answers and moves, and the finish.
        now = datetime.now(UTC)
        jobs = PostgresSchedulingJobs(connection)
        albums = await jobs.claim(
            worker=worker,
            limit=4,
            lease=lease,
            now=now,
            kinds=PAGED_KINDS,
            per_user_cap=ALBUMS_PER_USER,
        )
        tracks = await jobs.claim(
            worker=worker,
            limit=50,
            lease=lease,
            now=now,
            kinds=(LibraryItemKind.TRACK,),
            per_user_cap=TRACKS_PER_USER,
        )
        claimed = [job.item_id for job in (*albums, *tracks)]
        await jobs.items(claimed)
        ledger = PostgresIsrcLedger(connection)
        await ledger.settled(isrcs, now=now)
        await ledger.link_tracks(
            [
                ItemTrackLink(
                    item_id=LibraryItemId(probe.album_id),
                    position=10_000 + n,
                    track_id=request.track_id,
                    isrc=request.isrc,
                )
                for n, request in enumerate(requests)
            ]
        )
        await ledger.record_requests(requests, now=now)
        await jobs.finish(claimed, worker=worker, now=now)
        batch = await ledger.claim_dispatchable(limit=1000, now=now)
        await ledger.mark_dispatched([r.isrc for r in batch.requests], now=now)

    async def metrics(connection: AsyncConnection) -> None:
        # What every /metrics scrape reads (adapters/postgres/backlog.py).
        await backlog_on(connection)

    return {
        "library page, first (page + totalCount)": lambda c: PostgresLibraryRepository(c).page(
            owner, kind=None, after=None, limit=50
        ),
        "library page, after 950 items (page + totalCount)": lambda c: PostgresLibraryRepository(
            c
        ).page(owner, kind=None, after=deep, limit=50),
        "progress of a page's 50 items": lambda c: PostgresProgressReader(c).for_items(page_ids),
        "libraryItem (owner + id)": lambda c: PostgresLibraryRepository(c).get(
            owner, LibraryItemId(probe.track_item_id)
        ),
        "progress, one track": lambda c: PostgresProgressReader(c).for_items(
            [LibraryItemId(probe.track_item_id)]
        ),
        "progress, 500-track album": lambda c: PostgresProgressReader(c).for_items(
            [LibraryItemId(probe.album_id)]
        ),
        "progress, pending album (counted from the cache)": lambda c: PostgresProgressReader(
            c
        ).for_items([LibraryItemId(probe.pending_album_id)]),
        "metrics scrape (the backlog's counts)": metrics,
        "relay": relay,
    }


# What each scenario's statements are, in the order it sends them.
STATEMENT_LABELS = {
    "library page, first (page + totalCount)": ("library page, first", "library totalCount"),
    "library page, after 950 items (page + totalCount)": (
        "library page, after 950 items",
        "library totalCount (again)",
    ),
    "progress, pending album (counted from the cache)": (
        "progress, pending album: its job",
        "progress, pending album: from the cache",
    ),
    "metrics scrape (the backlog's counts)": (
        "metrics scrape: the tables' sizes and row estimates",
        "metrics scrape: pending jobs by age",
        "metrics scrape: jobs by status (small) or failed jobs (large)",
        "metrics scrape: ledger by state (small) or its few-row states (large)",
        "metrics scrape: the TIDAL pace",
    ),
    "relay": (
        "relay: claim 4 album jobs",
        "relay: claim 50 track jobs",
        "relay: their items",
        "relay: ledger settled? (500 ISRCs)",
        "relay: link 50 tracks",
        "relay: record 50 requests",
        "relay: finish the jobs",
        "relay: claim dispatchable (1,000)",
        "relay: mark them dispatched",
    ),
}


def _summary(statement: str) -> str:
    words = " ".join(statement.split())
    return words if len(words) <= 60 else words[:57] + "..."


def _plan_shape(plan: str) -> list[str]:
    """The plan's node lines without their figures, to tell two plans apart."""
    return [line.split("  (")[0] for line in plan.splitlines() if "->" in line or "(cost" in line]


def _explained(plan_rows: list[str], statement: str) -> tuple[str, float, list[str]]:
    plan = "\n".join(plan_rows)
    elapsed = sum(float(ms) for _, ms in _TIME.findall(plan))
    scans = sorted({t for t in _SEQ_SCAN.findall(plan) if t in BIG_TABLES})
    return plan, elapsed, scans


async def explain_all(
    database_url: str, probe: volume_data.Probe, *, level: int, runs: int = 5
) -> dict[str, list[Explained]]:
    # The service's engine settings (no JIT, a custom plan for every run: ADR 0033).
    engine = create_async_engine(
        async_url(database_url),
        poolclass=NullPool,
        connect_args={"server_settings": ENGINE_SERVER_SETTINGS},
    )
    capture = StatementCapture()
    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    results: dict[str, list[Explained]] = {}
    try:
        async with engine.connect() as connection:
            page = await PostgresLibraryRepository(connection).page(
                UserId(volume_data.PROBE_USER), kind=None, after=None, limit=50
            )
            await connection.rollback()
            page_ids = [item.id for item in page.items]
            for name, scenario in scenarios(probe, page_ids).items():
                capture.statements.clear()
                transaction = await connection.begin()
                await scenario(connection)
                await transaction.rollback()
                captured = list(capture.statements)
                event.remove(engine.sync_engine, "before_cursor_execute", capture)
                try:
                    explained = [Explained(s, "", [], []) for s, _ in captured]
                    for _ in range(runs):
                        transaction = await connection.begin()
                        for entry, (statement, parameters) in zip(explained, captured, strict=True):
                            rows = await connection.exec_driver_sql(
                                "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters
                            )
                            plan, elapsed, scans = _explained([r[0] for r in rows], statement)
                            entry.plan, entry.seq_scans = plan, scans
                            entry.runs_ms.append(elapsed)
                        await transaction.rollback()
                finally:
                    event.listen(engine.sync_engine, "before_cursor_execute", capture)
                labels = STATEMENT_LABELS.get(name, (name,))
                if len(labels) != len(explained):  # the adapter's SQL changed: say what it sent
                    labels = tuple(
                        f"{name} [{n + 1}]: {_summary(entry.statement)}"
                        for n, entry in enumerate(explained)
                    )
                for label, entry in zip(labels, explained, strict=True):
                    results[label] = [entry]
    finally:
        await engine.dispose()
    results.update(await _explain_add(database_url, probe, level=level, runs=runs))
    return results


def _literal(value: object) -> str:
    """A parameter as SQL text for EXECUTE (the prepared statement's types coerce it)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'"
    if isinstance(value, list | tuple):
        elements = (
            "NULL" if v is None else '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
            for v in value
        )
        text = "{" + ",".join(elements) + "}"
        return "'" + text.replace("'", "''") + "'"
    return "'" + str(value).replace("'", "''") + "'"


async def _generic_pass(
    database_url: str, explained: list[Explained], parameters: list[Any]
) -> None:
    """Each statement prepared and explained under a generic plan, in order, in one
    transaction rolled back."""
    connection = await asyncpg.connect(harness.dsn(database_url), server_settings=SERVER_SETTINGS)
    try:
        transaction = connection.transaction()
        await transaction.start()
        await connection.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        for n, (entry, values) in enumerate(zip(explained, parameters, strict=True)):
            name = f"bench_generic_{n}"
            await connection.execute(f"PREPARE {name} AS {entry.statement}")
            arguments = ", ".join(_literal(v) for v in values or ())
            execute = f"EXECUTE {name}({arguments})" if arguments else f"EXECUTE {name}"
            rows = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {execute}")
            entry.generic_plan, entry.generic_ms, entry.generic_scans = _explained(
                [r[0] for r in rows], entry.statement
            )
        await transaction.rollback()
    finally:
        await connection.close()


def _add_arguments(user: str, catalog_id: str) -> list[object]:
    """The add statement's parameters for a new track item: a fresh id, added now, no cached
    title or artists, a pending cap of 1000, no re-sync."""
    return [uuid.uuid4(), user, "track", catalog_id, datetime.now(UTC), None, [], 1000, False]


async def _explain_add(
    database_url: str, probe: volume_data.Probe, *, level: int, runs: int
) -> dict[str, list[Explained]]:
    """The add's one statement on plain asyncpg, as the product sends it (ADR 0016): its pool
    keeps PostgreSQL's generic plans, so that plan is explained too."""
    connection = await asyncpg.connect(harness.dsn(database_url), server_settings=SERVER_SETTINGS)
    results: dict[str, list[Explained]] = {}
    try:
        for name, user, catalog_id in (
            ("add, new item (one statement)", f"adder-{level}", str(6_500_000_000 + level)),
            ("add, re-add (one statement)", volume_data.PROBE_USER, "9000000002"),
        ):
            entry = Explained(_ADD, "", [], [])
            for _ in range(runs):
                transaction = connection.transaction()
                await transaction.start()
                rows = await connection.fetch(
                    "EXPLAIN (ANALYZE, BUFFERS) " + _ADD, *_add_arguments(user, catalog_id)
                )
                await transaction.rollback()
                entry.plan, elapsed, entry.seq_scans = _explained([r[0] for r in rows], _ADD)
                entry.runs_ms.append(elapsed)
            arguments = _add_arguments(user, catalog_id)
            await _generic_pass(database_url, [entry], [arguments])
            results[name] = [entry]
    finally:
        await connection.close()
    return results


async def _statistics(database_url: str) -> tuple[dict[str, str], dict[str, float]]:
    """Per big table: when the planner's statistics were last gathered, and its size."""
    connection = await asyncpg.connect(harness.dsn(database_url))
    try:
        rows = await connection.fetch(
            "SELECT relname, last_analyze, last_autoanalyze, n_mod_since_analyze,"
            " pg_total_relation_size(relid) AS size"
            " FROM pg_stat_user_tables WHERE relname = ANY($1::text[])",
            sorted(BIG_TABLES),
        )
    finally:
        await connection.close()
    analyzed = {}
    for row in rows:
        when = row["last_autoanalyze"] or row["last_analyze"]
        analyzed[row["relname"]] = (
            "never analyzed"
            if when is None
            else f"auto-analyzed {when:%H:%M:%S}, {row['n_mod_since_analyze']} rows changed since"
        )
    sizes = {row["relname"]: row["size"] / 2**20 for row in rows}
    return analyzed, sizes


# ---------------------------------------------------------------- loading


async def _load(database_url: str, batches: Any) -> dict[str, int]:
    connection = await asyncpg.connect(harness.dsn(database_url))
    counts: dict[str, int] = {}
    try:
        for rows in batches:
            await volume_data.copy(connection, rows)
            for table, records in vars(rows).items():
                counts[table] = counts.get(table, 0) + len(records)
            print(f"  loaded {counts.get('items', 0):,} items", file=sys.stderr)
    finally:
        await connection.close()
    return counts


async def _generate(
    database_url: str, start: int, end: int, now: datetime, total: int
) -> dict[str, int]:
    connection = await asyncpg.connect(harness.dsn(database_url))
    counts: dict[str, int] = {}
    try:
        for first in range(start, end, 100_000):
            written = await volume_data.generate_background(
                connection, first, min(end, first + 100_000), now=now, total=total
            )
            counts = _add_counts(counts, written)
            print(f"  generated {first + written['items']:,} items", file=sys.stderr)
    finally:
        await connection.close()
    return counts


def _add_counts(total: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    return {table: total.get(table, 0) + more.get(table, 0) for table in {*total, *more}}


def run(rig: Rig) -> VolumeReport:
    config = rig.config
    levels = QUICK_LEVELS if config.quick else LEVELS
    per_request = 30 if config.quick else 150
    started_at = datetime.now(UTC)
    report = VolumeReport(
        started_at=started_at,
        finished_at=started_at,
        machine=harness.machine(),
        load_after=(0.0, 0.0, 0.0),
        database=f"{rig.database_where}, PostgreSQL {harness.server_version(rig.database_url)}",
    )
    env = {
        **rig.common,
        "RELAY_ENABLED": "false",
        # The default cap (ADR 0022), so the add runs the statement users get.
        "ADD_MAX_PENDING_PER_USER": "1000",
    }
    now = volume_data.at_now()
    probe, probe_rows = volume_data.probe(now)
    with (
        harness.scratch_database() as (twin_url, _),
        harness.service({**env, "DATABASE_URL": twin_url}, rig.data_dir / "twin") as twin,
        harness.service(env, rig.data_dir / "volume") as service,
    ):
        asyncio.run(_load(twin_url, [probe_rows]))
        counts = asyncio.run(_load(rig.database_url, [probe_rows]))
        loaded, done = 0.0, 0
        for label, target in (("probe alone", 0), *((f"{n:,}", n) for n in levels)):
            if target:
                print(f"loading up to {target:,} background items ...", file=sys.stderr)
                started = time.perf_counter()
                counts = _add_counts(
                    counts,
                    asyncio.run(_generate(rig.database_url, done, target, now, levels[-1])),
                )
                loaded = time.perf_counter() - started
                done = target
            print(f"measuring at {label} ...", file=sys.stderr)
            twin_requests, requests = measure_requests(
                (twin.url, service.url), probe, level=target, per_request=per_request
            )
            twin_queries = asyncio.run(explain_all(twin_url, probe, level=target))
            queries = asyncio.run(explain_all(rig.database_url, probe, level=target))
            analyzed, sizes = asyncio.run(_statistics(rig.database_url))
            report.levels.append(
                Level(
                    label=label,
                    library_items=counts.get("items", 0),
                    rows=dict(counts),
                    load_seconds=loaded,
                    requests=requests,
                    twin_requests=twin_requests,
                    queries=queries,
                    twin_queries=twin_queries,
                    statistics=analyzed,
                    sizes_mib=sizes,
                )
            )
    report.finished_at = datetime.now(UTC)
    report.load_after = harness.machine()["load"]
    return report


# ---------------------------------------------------------------- the report


def goals(report: VolumeReport) -> list[tuple[str, str, str]]:
    top = report.levels[-1]
    rows = []
    for name, timing in top.requests.items():
        fresh = top.twin_requests[name]
        ratio = timing.median_ms / fresh.median_ms
        rows.append(
            (
                f"{name}: median at {top.label} items <= {GOAL_RATIO}x fresh",
                f"{timing.median_ms:.2f} ms vs {fresh.median_ms:.2f} ms = {ratio:.2f}x",
                "met" if ratio <= GOAL_RATIO else "**not met**",
            )
        )
    scans = [
        f"{name}: {', '.join(sorted({*e.seq_scans, *e.generic_scans}))}"
        for name, explained in top.queries.items()
        for e in explained
        if e.seq_scans or e.generic_scans
    ]
    rows.append(
        (
            f"no sequential scan of a big table in any plan the service runs at {top.label}"
            " items (custom plans; the add's generic plan too)",
            "; ".join(scans) or "none",
            "met" if not scans else "**not met**",
        )
    )
    return rows


def render(report: VolumeReport) -> str:
    machine = report.machine
    fresh = report.levels[0]
    load_before = ", ".join(f"{x:.2f}" for x in machine["load"])
    load_after = ", ".join(f"{x:.2f}" for x in report.load_after)
    minutes = (report.finished_at - report.started_at).total_seconds() / 60
    lines = [
        "# Benchmarks: cost as the data grows",
        "",
        "Written by `make bench-volume` (`.venv/bin/python -m bench --only volume`, bench/"
        "data_volume.py); not part of `make bench`, as loading the largest level alone takes"
        " minutes. Regenerate rather than edit; the notes below the marker are kept.",
        "",
        f"- **Date**: {report.started_at:%Y-%m-%d %H:%M} UTC ({minutes:.1f} min)",
        f"- **Machine**: {machine['nproc']} CPUs ({machine['cpu']}), "
        f"{machine['memory_gib']} GiB memory, Python {machine['python']}; shared with other"
        " engineers' tests",
        f"- **Load average** (1, 5, 15 min) before: {load_before}; after: {load_after}",
        f"- **Database**: {report.database}; a fresh database, dropped after. No ANALYZE is run"
        " by the bench: see the statistics table.",
        "- **Service**: `libingest serve` in a process of its own, `RELAY_ENABLED=false`, the"
        " default pending cap (1,000), the per-user rate opened.",
        "- **Data** (bench/volume_data.py): per 100,000 library items, one user with 10,000"
        " and the rest in users of 9 (at 10^6: 100,000 users); one item in ten an album of 10"
        " linked tracks; a scheduling job per item (0.1% pending, waiting for a retry a day"
        " later); two ISRC ledger rows per item (0.1% waiting to be dispatched, 2% dispatched"
        " past the window, 1% failed, the rest indexed); a cached album of 10 tracks per five"
        " items. The background is generated by the server (INSERT ... SELECT over"
        " generate_series, into the indexed tables); the probe user, measured, is sent with"
        " COPY: 1,000 items, the oldest an album of 500 tracks, ten jobs due, at every level."
        " The relay's statements thus find the same due work at every level.",
        "",
        "## Goals (issue 15, part 1)",
        "",
        "| goal | measured | verdict |",
        "|---|---|---|",
    ]
    lines += [f"| {g} | {m} | {v} |" for g, m, v in goals(report)]
    lines += [
        "",
        "## Rows at each level",
        "",
        "| level | library items | jobs | item links | ledger rows | cached albums |"
        " cached tracks | load time |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level in report.levels:
        r = level.rows
        lines.append(
            f"| {level.label} | {r.get('items', 0):,} | {r.get('jobs', 0):,} |"
            f" {r.get('links', 0):,} | {r.get('ledger', 0):,} | {r.get('albums', 0):,} |"
            f" {r.get('tracks', 0):,} | {level.load_seconds:.0f} s |"
        )
    lines += [
        "",
        "## Requests over HTTP",
        "",
        "Sequential, one keep-alive connection from the bench process (httpx; its own cost is"
        " in every figure). Each request goes in turn to the loaded service and to a twin: a"
        " second service on a second database that holds the probe user alone (the fresh"
        " database), so both medians come from the same seconds of a shared machine. Cells:"
        " loaded median / p99 in ms (the twin's median), and the ratio of the medians. Pages"
        " carry each item's ingestion progress (the DataLoader's one statement for the page).",
        "",
        "| request | " + " | ".join(level.label for level in report.levels) + " |",
        "|---|" + "---:|" * len(report.levels),
    ]
    for name in REQUESTS:
        cells = []
        for level in report.levels:
            timing, twin = level.requests[name], level.twin_requests[name]
            cells.append(
                f"{timing.median_ms:.2f} / {timing.p99_ms:.2f} ({twin.median_ms:.2f})"
                f" **{timing.median_ms / twin.median_ms:.2f}x**"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Statements on the server",
        "",
        "Each statement as the product sends it (captured from its adapters, with their"
        " parameters), EXPLAIN (ANALYZE, BUFFERS) five times in a transaction rolled back;"
        " planning + execution time, median, in ms, on the loaded database (and on the twin)."
        " The engine's statements run as the service's engine runs them, with a custom plan"
        " every time (`plan_cache_mode = force_custom_plan`, ADR 0033); the add's statement,"
        " on the pool that keeps generic plans, is also prepared and run under"
        " `plan_cache_mode = force_generic_plan` (the plan asyncpg's prepared statement may"
        " switch to after five runs): generic. A sequential scan of a big table is flagged"
        " **seq scan**.",
        "",
        "| statement | " + " | ".join(level.label for level in report.levels) + " |",
        "|---|" + "---:|" * len(report.levels),
    ]
    for name, explained in fresh.queries.items():
        for index, _ in enumerate(explained):
            cells = []
            for level in report.levels:
                entry = level.queries[name][index]
                twin_entry = level.twin_queries[name][index]
                flag = f" **seq scan: {', '.join(entry.seq_scans)}**" if entry.seq_scans else ""
                generic = (
                    f" **generic seq scan: {', '.join(entry.generic_scans)}**"
                    if entry.generic_scans
                    else ""
                )
                generic_ms = f"; generic {entry.generic_ms:.3f}" if entry.generic_plan else ""
                cells.append(
                    f"{entry.median_ms:.3f} ({twin_entry.median_ms:.3f}){generic_ms}{flag}{generic}"
                )
            label = name if len(explained) == 1 else f"{name} [{index + 1}]"
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Planner statistics and sizes",
        "",
        "| table | " + " | ".join(level.label for level in report.levels) + " |",
        "|---|" + "---|" * len(report.levels),
    ]
    for table in sorted(BIG_TABLES):
        cells = [
            f"{level.sizes_mib.get(table, 0):.0f} MiB, {level.statistics.get(table, '-')}"
            for level in report.levels
        ]
        lines.append(f"| {table} | " + " | ".join(cells) + " |")
    top = report.levels[-1]
    lines += ["", f"## Plans at {top.label} items", ""]
    for name, explained in top.queries.items():
        for index, entry in enumerate(explained):
            label = name if len(explained) == 1 else f"{name} [{index + 1}]"
            statement = " ".join(entry.statement.split())
            lines += [
                f"### {label}",
                "",
                "```sql",
                statement if len(statement) < 400 else statement[:400] + " ...",
                "```",
                "",
                "```",
                entry.plan,
                "```",
                "",
            ]
            if entry.generic_plan and _plan_shape(entry.generic_plan) != _plan_shape(entry.plan):
                lines += ["Generic plan:", "", "```", entry.generic_plan, "```", ""]
    return "\n".join(lines) + "\n"


NOTES_MARKER = "<!-- notes: kept across runs -->"


def write(report: VolumeReport, path: Path = DOC) -> None:
    notes = NOTES_MARKER + "\n"
    if path.exists() and NOTES_MARKER in (previous := path.read_text()):
        notes = previous[previous.index(NOTES_MARKER) :]
    path.write_text(render(report) + "\n" + notes)


def run_alone(rig: Rig) -> None:
    report = run(rig)
    if rig.config.quick or not rig.config.write:
        print(render(report))
    else:
        write(report)
        print(f"wrote {DOC}", file=sys.stderr)
        print("\n".join(f"{g}: {m} ({v})" for g, m, v in goals(report)))
