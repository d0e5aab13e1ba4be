"""Machinery of the fault suite: the service as a separate process, a stream of adds over HTTP
with per-add latency, and the final consistency check against PostgreSQL and the loopback
Inngest Event API.

Every wait here is on a condition with a deadline; every process started is killed at teardown
(see `Services`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from adapters.auth.jwt_tokens import JwtAuthenticator, JwtSettings
from tests.support.loopback_inngest import LoopbackInngest
from tests.support.loopback_qdrant import LoopbackQdrant
from tests.support.loopback_tidal import (
    LoopbackAlbum,
    LoopbackPlaylist,
    LoopbackTidal,
    LoopbackTrack,
    generated_album,
)
from tests.support.scratch_database import (
    asyncpg_dsn,
    create_scratch_database,
    drop_scratch_database,
)

REPO = Path(__file__).resolve().parents[2]
JWT_SECRET = "fault-suite-secret-that-is-long-enough-0123456789"
EVENT_PREFIX = "track-ingestion-requested:"
RESULTS_PATH = Path(os.environ.get("FAULT_RESULTS_PATH", REPO / ".data" / "fault-results.json"))

ADD_ALBUM = (
    "mutation Add($id: ID!) { addAlbumToLibrary(albumId: $id) {"
    " __typename ... on AddToLibrarySuccess { item { id } alreadyInLibrary } } }"
)
ADD_PLAYLIST = (
    "mutation Add($id: ID!) { addPlaylistToLibrary(playlistId: $id) {"
    " __typename ... on AddToLibrarySuccess { item { id } alreadyInLibrary } } }"
)


def seconds_from_env(name: str, default: float) -> float:
    """A duration the environment may override (to run a fault longer or shorter)."""
    raw = os.environ.get(name)
    return float(raw) if raw else default


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def libingest_command() -> list[str]:
    executable = Path(sys.executable).parent / "libingest"
    if executable.exists():
        return [str(executable)]
    return [sys.executable, "-m", "entrypoints.cli"]


dsn = asyncpg_dsn


async def wait_for(
    condition: Callable[[], Awaitable[bool]],
    *,
    within: float,
    interval: float = 0.1,
    what: str = "condition",
) -> float:
    """Poll `condition` until it holds; the seconds it took. Raises TimeoutError past `within`."""
    started = time.monotonic()
    while True:
        if await condition():
            return time.monotonic() - started
        if time.monotonic() - started > within:
            raise TimeoutError(f"{what} not reached within {within:.0f} s")
        await asyncio.sleep(interval)


# -- databases ----------------------------------------------------------------------------------


async def create_database(server_url: str) -> tuple[str, str]:
    """A fresh `libingest_fault_<rand>` database on the server; (name, its URL)."""
    return await create_scratch_database(server_url, "libingest_fault")


async def drop_database(server_url: str, name: str) -> None:
    await drop_scratch_database(server_url, name)


# -- the service as a process -------------------------------------------------------------------


@dataclass
class Loopbacks:
    tidal: LoopbackTidal
    inngest: LoopbackInngest
    qdrant: LoopbackQdrant


def service_env(
    *,
    database_url: str,
    data_dir: Path,
    loopbacks: Loopbacks,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        # The service must see only what we give it (no stray INNGEST_*/QDRANT_* of the shell).
        if not key.startswith(("INNGEST_", "QDRANT_", "TIDAL_", "LIBINGEST_", "RELAY_", "AUTH_"))
        and key not in {"DATABASE_URL", "TEST_DATABASE_URL"}
    }
    env.update(
        {
            "DATABASE_URL": database_url,
            "LIBINGEST_DATA_DIR": str(data_dir),
            "LIBINGEST_LOG_FORMAT": "json",
            "LIBINGEST_LOG_LEVEL": "INFO",
            "AUTH_JWT_SECRET": JWT_SECRET,
            "TIDAL_CLIENT_ID": loopbacks.tidal.client_id,
            "TIDAL_CLIENT_SECRET": loopbacks.tidal.client_secret,
            "TIDAL_API_BASE_URL": loopbacks.tidal.base_url,
            "TIDAL_AUTH_URL": loopbacks.tidal.auth_url,
            "TIDAL_REQUESTS_PER_SECOND": "1000",
            "TIDAL_BURST": "200",
            "INNGEST_DEV": "1",
            "INNGEST_EVENT_API_BASE_URL": loopbacks.inngest.url,
            "QDRANT_URL": loopbacks.qdrant.url,
            "RELAY_SWEEP_SECONDS": "0.2",
            "DATABASE_POOL_SIZE": "10",
        }
    )
    env.update(extra or {})
    return env


class ServiceProcess:
    """`libingest serve --port <free>` in its own process group, its output in a log file."""

    def __init__(self, env: Mapping[str, str], log_path: Path, port: int | None = None) -> None:
        self.env = dict(env)
        self.log_path = log_path
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        log = self.log_path.open("ab")
        log.write(f"\n--- start {self.starts} on port {self.port} ---\n".encode())
        log.flush()
        self.process = subprocess.Popen(
            [*libingest_command(), "serve", "--port", str(self.port)],
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    async def wait_ready(self, within: float = 60.0) -> float:
        """Until /readyz answers 200; the seconds it took. Fails at once if the process dies."""

        async def ready() -> bool:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"the service exited before it was ready:\n{self.log_tail()}")
            try:
                async with httpx.AsyncClient(timeout=2) as client:
                    answer = await client.get(f"{self.url}/readyz")
            except httpx.HTTPError:
                return False
            return answer.status_code == 200

        try:
            return await wait_for(ready, within=within, interval=0.1, what="/readyz")
        except TimeoutError as error:
            raise TimeoutError(f"{error}\n{self.log_tail()}") from error

    def kill(self) -> None:
        """SIGKILL, no goodbye: leases are not handed back, in-flight sends are cut."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (uvicorn's graceful shutdown), then SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def log_count(self, needle: str) -> int:
        try:
            return self.log_path.read_text(errors="replace").count(needle)
        except OSError:
            return 0


class Services:
    """Every service process a test starts; all are killed at teardown, whatever happened."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self.processes: list[ServiceProcess] = []

    def launch(self, env: Mapping[str, str], name: str = "service") -> ServiceProcess:
        service = ServiceProcess(env, self._directory / f"{name}-{len(self.processes)}.log")
        self.processes.append(service)
        service.start()
        return service

    def kill_all(self) -> None:
        for service in self.processes:
            service.kill()


# -- the catalogue the loopback TIDAL serves ---------------------------------------------------

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class Catalogue:
    """Albums with ISRCs unique to each album, and playlists of their tracks, added to the
    loopback TIDAL as they are made."""

    def __init__(self, tidal: LoopbackTidal, *, first: int = 0) -> None:
        self._tidal = tidal
        self._next = first
        self.albums: dict[str, LoopbackAlbum] = {}
        self.playlists: dict[str, LoopbackPlaylist] = {}

    def new_album(self, tracks: int) -> LoopbackAlbum:
        number = self._next
        self._next += 1
        code = "".join(_ALPHABET[(number // 36**power) % 36] for power in (2, 1, 0))
        album = generated_album(
            str(100_000_000 + number * 1_000), tracks, isrc_prefix=f"QZ{code}26"
        )
        self.albums[album.id] = self._tidal.add_album(album)
        return album

    def new_playlist(self, items: Sequence[LoopbackTrack]) -> LoopbackPlaylist:
        """A playlist (a UUID from the same counter) of `items`, which may repeat."""
        number = self._next
        self._next += 1
        playlist = LoopbackPlaylist(
            id=f"00000000-0000-4000-8000-{number:012d}",
            name=f"Playlist {number}",
            items=tuple(items),
        )
        self.playlists[playlist.id] = self._tidal.add_playlist(playlist)
        return playlist

    def extend_playlist(self, playlist_id: str, items: Sequence[LoopbackTrack]) -> None:
        """The playlist as TIDAL now serves it: `items` added at its end."""
        before = self.playlists[playlist_id]
        changed = LoopbackPlaylist(before.id, before.name, (*before.items, *items))
        self.playlists[playlist_id] = self._tidal.add_playlist(changed)

    def isrcs(self, catalog_id: str) -> set[str]:
        """The ISRCs an album or playlist holds now (what adding it must have scheduled)."""
        holder = self.albums.get(catalog_id) or self.playlists.get(catalog_id)
        if holder is None:
            return set()
        return {item.isrc for item in holder.items if item.isrc and item.kind == "tracks"}


# -- adds over HTTP -----------------------------------------------------------------------------


@dataclass
class AddResult:
    user: str
    album_id: str
    service: str
    at: float  # seconds since the driver started
    latency: float
    status: int | None
    item_id: str | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.item_id is not None


class AddDriver:
    """Adds albums through GraphQL with a bearer token per user, noting every add's latency."""

    def __init__(self, *, timeout: float = 10.0) -> None:
        self._authenticator = JwtAuthenticator(JwtSettings(secret=JWT_SECRET))
        self._tokens: dict[str, str] = {}
        self._client = httpx.AsyncClient(
            timeout=timeout, limits=httpx.Limits(max_connections=64, max_keepalive_connections=32)
        )
        self.started = time.monotonic()
        self.results: list[AddResult] = []

    async def aclose(self) -> None:
        await self._client.aclose()

    def now(self) -> float:
        return time.monotonic() - self.started

    def _token(self, user: str) -> str:
        if user not in self._tokens:
            self._tokens[user] = self._authenticator.issue(user)
        return self._tokens[user]

    async def add(self, service: ServiceProcess, user: str, album_id: str) -> AddResult:
        at = self.now()
        begun = time.perf_counter()
        status: int | None = None
        item_id: str | None = None
        error: str | None = None
        try:
            # An album id is digits, a playlist id a UUID.
            query, field = (
                (ADD_PLAYLIST, "addPlaylistToLibrary")
                if "-" in album_id
                else (ADD_ALBUM, "addAlbumToLibrary")
            )
            answer = await self._client.post(
                f"{service.url}/graphql",
                json={"query": query, "variables": {"id": album_id}},
                headers={"authorization": f"Bearer {self._token(user)}"},
            )
            status = answer.status_code
            try:
                body = answer.json()
                item_id = body["data"][field]["item"]["id"]
            except (ValueError, KeyError, TypeError):
                error = answer.text[:300]
        except httpx.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}"
        result = AddResult(
            user=user,
            album_id=album_id,
            service=service.url,
            at=at,
            latency=time.perf_counter() - begun,
            status=status,
            item_id=item_id,
            error=error,
        )
        self.results.append(result)
        return result

    async def stream(
        self,
        plan: Sequence[tuple[ServiceProcess, str, str]],
        *,
        per_second: float,
    ) -> list[AddResult]:
        """Start the adds of `plan` (service, user, album id) at a steady rate, each without
        waiting for the previous ones, as independent users would; all their results."""
        start = time.monotonic()

        async def one(index: int, service: ServiceProcess, user: str, album_id: str) -> AddResult:
            delay = start + index / per_second - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            return await self.add(service, user, album_id)

        return list(await asyncio.gather(*(one(i, *step) for i, step in enumerate(plan))))


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


# -- the final consistency check ---------------------------------------------------------------


@dataclass
class Consistency:
    """What a run left behind, checked against what was added."""

    items: int
    committed_adds: int
    failed_adds: int
    answered_ok_but_missing: list[str]
    jobs: Counter[str]
    jobs_not_settled: list[str]
    jobs_failed_wrongly: list[str]
    expected_isrcs: int
    missing_from_ledger: list[str]
    ledger_states: Counter[str]
    events: int
    unique_events: int
    duplicate_sends: int  # the same event id accepted more than once
    foreign_ids: list[str]  # event ids that are not `track-ingestion-requested:<its ISRC>`
    isrcs_with_several_ids: list[str]
    lost: list[str]  # expected ISRCs never accepted by the Event API
    unexpected: list[str]  # ISRCs dispatched that no committed add asked for
    settle_seconds: float = 0.0


async def _snapshot(database_url: str) -> tuple[list[Any], list[Any]]:
    connection = await asyncpg.connect(dsn(database_url))
    try:
        items = await connection.fetch(
            "SELECT i.id::text AS id, i.catalog_id, j.status"
            " FROM library_items i LEFT JOIN scheduling_jobs j ON j.library_item_id = i.id"
        )
        ledger = await connection.fetch("SELECT isrc, state, event_id FROM isrc_ledger")
    finally:
        await connection.close()
    return list(items), list(ledger)


async def wait_until_scheduled(
    database_url: str,
    inngest: LoopbackInngest,
    catalogue: Catalogue,
    *,
    within: float,
) -> float:
    """Until no job is pending and every ISRC of every item in the database has reached the
    Event API and is recorded as sent; the seconds it took (the time to recover, once the fault
    is over)."""

    async def settled() -> bool:
        try:
            items, ledger = await _snapshot(database_url)
        except (OSError, asyncpg.PostgresError):
            return False  # the database may still be coming back
        if any(row["status"] == "pending" for row in items):
            return False
        accepted = {event_id.removeprefix(EVENT_PREFIX) for event_id in inngest.unique_ids}
        wanted = set().union(*(catalogue.isrcs(row["catalog_id"]) for row in items))
        # Accepted is not yet settled: a relay that sent a batch and could not record it (the
        # database went away) sends it again, and records it, only after that.
        recorded = {row["isrc"] for row in ledger if row["state"] in {"dispatched", "indexed"}}
        return wanted <= accepted and wanted <= recorded

    return await wait_for(settled, within=within, interval=0.25, what="every add scheduled")


async def check_consistency(
    database_url: str,
    inngest: LoopbackInngest,
    catalogue: Catalogue,
    adds: Iterable[AddResult],
    *,
    missing_albums: Iterable[str] = (),
) -> Consistency:
    items, ledger = await _snapshot(database_url)
    adds = list(adds)
    missing = set(missing_albums)
    in_database = {row["id"] for row in items}
    expected: set[str] = set()
    not_settled: list[str] = []
    failed_wrongly: list[str] = []
    for row in items:
        status = row["status"]
        if status == "failed" and row["catalog_id"] in missing:
            continue
        if status != "done":
            (failed_wrongly if status == "failed" else not_settled).append(row["id"])
        expected |= catalogue.isrcs(row["catalog_id"])
    ledger_by_isrc = {row["isrc"]: row for row in ledger}
    events = inngest.events
    ids_by_isrc: dict[str, set[str]] = {}
    foreign: list[str] = []
    for event in events:
        isrc = str(event.data.get("isrc", ""))
        ids_by_isrc.setdefault(isrc, set()).add(event.id)
        if event.id != f"{EVENT_PREFIX}{isrc}":
            foreign.append(event.id)
    accepted = {event_id.removeprefix(EVENT_PREFIX) for event_id in inngest.unique_ids}
    return Consistency(
        items=len(items),
        committed_adds=sum(1 for add in adds if add.ok),
        failed_adds=sum(1 for add in adds if not add.ok),
        answered_ok_but_missing=[
            str(add.item_id) for add in adds if add.ok and add.item_id not in in_database
        ],
        jobs=Counter(str(row["status"]) for row in items),
        jobs_not_settled=not_settled,
        jobs_failed_wrongly=failed_wrongly,
        expected_isrcs=len(expected),
        missing_from_ledger=sorted(
            isrc
            for isrc in expected
            if isrc not in ledger_by_isrc
            or ledger_by_isrc[isrc]["state"] not in {"dispatched", "indexed"}
        ),
        ledger_states=Counter(str(row["state"]) for row in ledger),
        events=len(events),
        unique_events=len(inngest.unique_ids),
        duplicate_sends=len(events) - len(inngest.unique_ids),
        foreign_ids=foreign,
        isrcs_with_several_ids=sorted(isrc for isrc, ids in ids_by_isrc.items() if len(ids) > 1),
        lost=sorted(expected - accepted),
        unexpected=sorted(accepted - expected),
    )


def re_sends_across(inngest: LoopbackInngest, start: float, end: float) -> int:
    """Re-sends of an event id first received before `end` and received again after `start`
    (time.monotonic()): what a relay must do when the database goes away between its send and
    the commit that records it. Inngest runs an id once, so these are not work done twice."""
    first: dict[str, float] = {}
    across = 0
    for event in sorted(inngest.events, key=lambda e: e.received_at):
        if event.id not in first:
            first[event.id] = event.received_at
        elif first[event.id] < end and event.received_at > start:
            across += 1
    return across


def assert_consistent(result: Consistency, *, allowed_duplicate_sends: int = 0) -> None:
    """The suite's promises: every committed add scheduled, one event id per ISRC, nothing
    dispatched twice beyond `allowed_duplicate_sends` re-sends of the same id."""
    assert not result.answered_ok_but_missing, "an add answered 200 but is not in the database"
    assert not result.jobs_not_settled, f"jobs not done: {result.jobs_not_settled[:5]}"
    assert not result.jobs_failed_wrongly, f"jobs failed: {result.jobs_failed_wrongly[:5]}"
    assert not result.missing_from_ledger, f"not in the ledger: {result.missing_from_ledger[:5]}"
    assert not result.lost, f"{len(result.lost)} ISRCs never dispatched: {result.lost[:5]}"
    assert not result.foreign_ids, f"event ids not keyed by ISRC: {result.foreign_ids[:5]}"
    assert not result.isrcs_with_several_ids, "an ISRC was sent under several event ids"
    assert not result.unexpected, f"ISRCs nobody added: {result.unexpected[:5]}"
    assert result.duplicate_sends <= allowed_duplicate_sends, (
        f"{result.duplicate_sends} duplicate sends (allowed {allowed_duplicate_sends})"
    )


# -- measurements -------------------------------------------------------------------------------


@dataclass
class Measurement:
    fault: str
    adds: int
    adds_ok: int
    adds_failed: int
    adds_during_fault: int
    add_p50_ms: float
    add_p99_ms: float
    add_max_ms: float
    add_p99_during_fault_ms: float
    events_sent: int
    unique_event_ids: int
    duplicate_sends: int
    lost: int
    recovery_s: float
    notes: dict[str, Any] = field(default_factory=dict)


def measure(
    fault: str,
    adds: Sequence[AddResult],
    result: Consistency,
    *,
    fault_window: tuple[float, float],
    recovery_s: float,
    notes: Mapping[str, Any] | None = None,
) -> Measurement:
    answered = [add.latency * 1000 for add in adds]
    start, end = fault_window
    during = [add.latency * 1000 for add in adds if start <= add.at <= end]
    return Measurement(
        fault=fault,
        adds=len(adds),
        adds_ok=sum(1 for add in adds if add.ok),
        adds_failed=sum(1 for add in adds if not add.ok),
        adds_during_fault=len(during),
        add_p50_ms=round(statistics.median(answered), 1) if answered else 0.0,
        add_p99_ms=round(percentile(answered, 0.99), 1),
        add_max_ms=round(max(answered, default=0.0), 1),
        add_p99_during_fault_ms=round(percentile(during, 0.99), 1),
        events_sent=result.events,
        unique_event_ids=result.unique_events,
        duplicate_sends=result.duplicate_sends,
        lost=len(result.lost),
        recovery_s=round(recovery_s, 1),
        notes=dict(notes or {}),
    )


def record(measurement: Measurement, path: Path = RESULTS_PATH) -> None:
    """Merge one fault's measurement into the results file (keyed by fault)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        existing = json.loads(path.read_text())
    except (OSError, ValueError):
        existing = {}
    existing[measurement.fault] = asdict(measurement)
    path.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")


def assert_adds_answered(adds: Sequence[AddResult], *, p99_bound_s: float = 1.0) -> None:
    """Every add answered 200 with an item, and the p99 under a generous bound."""
    failures = [add for add in adds if not add.ok]
    assert not failures, f"{len(failures)} adds failed, e.g. {failures[0]}"
    p99 = percentile([add.latency for add in adds], 0.99)
    assert p99 < p99_bound_s, f"add p99 {p99 * 1000:.0f} ms"


def results_table(path: Path = RESULTS_PATH) -> str:
    """The measured table of docs/reliability.md, from a run's results file:
    `.venv/bin/python -m tests.faults.harness [path]`."""
    results = json.loads(path.read_text())
    lines = [
        "| fault | adds (ok/failed) | events sent | unique ids | duplicates | lost"
        " | add p99 during fault | add p99 overall | recovery after fault |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in results.items():
        lines.append(
            f"| {name} | {row['adds']} ({row['adds_ok']}/{row['adds_failed']})"
            f" | {row['events_sent']} | {row['unique_event_ids']} | {row['duplicate_sends']}"
            f" | {row['lost']} | {row['add_p99_during_fault_ms']:.0f} ms"
            f" | {row['add_p99_ms']:.0f} ms | {row['recovery_s']:.1f} s |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(results_table(Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS_PATH))
