"""The fault suite: the service as a separate process, a fault injected while adds stream in,
and afterwards the promises checked against PostgreSQL and what the Event API accepted:
every committed add scheduled, one event id per ISRC, no ISRC dispatched twice, adds answering
quickly throughout. Each test records its measurements (docs/reliability.md has the table).
The faults that are one dependency failing for a while are one table of timelines (TIMELINES).

Durations are constants the environment may override, e.g. FAULT_INNGEST_DOWN_SECONDS=10."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from adapters.postgres.database import EmbeddedPostgres
from tests.faults.harness import (
    AddDriver,
    AddResult,
    Catalogue,
    Loopbacks,
    ServiceProcess,
    Services,
    assert_adds_answered,
    assert_consistent,
    check_consistency,
    create_database,
    drop_database,
    dsn,
    measure,
    re_sends_across,
    record,
    seconds_from_env,
    service_env,
    wait_for,
    wait_until_scheduled,
)
from tests.support.loopback_inngest import InngestMode
from tests.support.loopback_qdrant import QdrantMode
from tests.support.loopback_tidal import Fault, LoopbackTrack

pytestmark = pytest.mark.faults

INNGEST_DOWN_S = seconds_from_env("FAULT_INNGEST_DOWN_SECONDS", 30.0)
QDRANT_DOWN_S = seconds_from_env("FAULT_QDRANT_DOWN_SECONDS", 10.0)
QDRANT_SLOW_S = seconds_from_env("FAULT_QDRANT_SLOW_SECONDS", 10.0)
QDRANT_SLOW_REPLY_S = 3.0  # well past the adapter's deadline of a few hundred ms
TIDAL_429_S = seconds_from_env("FAULT_TIDAL_429_SECONDS", 20.0)
TIDAL_5XX_S = seconds_from_env("FAULT_TIDAL_5XX_SECONDS", 5.0)
TIDAL_TIMEOUT_S = seconds_from_env("FAULT_TIDAL_TIMEOUT_SECONDS", 10.0)
POSTGRES_DOWN_S = seconds_from_env("FAULT_POSTGRES_DOWN_SECONDS", 5.0)
PLAYLIST_FAULT_S = seconds_from_env("FAULT_PLAYLIST_SECONDS", 10.0)
LEAD_S = 3.0  # adds before the fault starts
TAIL_S = 3.0  # adds after it ends
SETTLE_TIMEOUT_S = 240.0


def plan_adds(
    services: Sequence[ServiceProcess],
    catalogue: Catalogue,
    count: int,
    *,
    tracks: int = 12,
    share_every: int = 4,
) -> list[tuple[ServiceProcess, str, str]]:
    """`count` adds spread over `services` in turn: mostly a fresh album by one of 20 users; every
    `share_every`-th an album added before, by another user (dedupe across users)."""
    plan: list[tuple[ServiceProcess, str, str]] = []
    fresh: list[str] = []
    for index in range(count):
        service = services[index % len(services)]
        if fresh and index % share_every == share_every - 1:
            plan.append((service, f"sharer-{index}", fresh[index // 2 % len(fresh)]))
        else:
            album = catalogue.new_album(tracks)
            fresh.append(album.id)
            plan.append((service, f"user-{index % 20}", album.id))
    return plan


async def start_service(
    services: Services,
    loopbacks: Loopbacks,
    database_url: str,
    data_dir: Path,
    name: str = "service",
    **extra: str,
) -> ServiceProcess:
    service = services.launch(
        service_env(database_url=database_url, data_dir=data_dir, loopbacks=loopbacks, extra=extra),
        name,
    )
    await service.wait_ready()
    return service


async def warm_up(driver: AddDriver, service: ServiceProcess, catalogue: Catalogue) -> None:
    """One add before measuring: the first request pays for imports, the token, connections."""
    result = await driver.add(service, "warm-up", catalogue.new_album(3).id)
    assert result.ok, result


def streamed(adds: Sequence[AddResult]) -> list[AddResult]:
    return [add for add in adds if add.user != "warm-up"]


async def settle_and_check(
    name: str,
    *,
    database_url: str,
    loopbacks: Loopbacks,
    catalogue: Catalogue,
    driver: AddDriver,
    adds: Sequence[AddResult],
    window: tuple[float, float],
    notes: Callable[[], dict[str, object]],
) -> None:
    """After the fault: wait until everything is scheduled, record the measurements (`notes` is
    read once settled), then check the promises."""
    recovery = await wait_until_scheduled(
        database_url, loopbacks.inngest, catalogue, within=SETTLE_TIMEOUT_S
    )
    result = await check_consistency(database_url, loopbacks.inngest, catalogue, driver.results)
    record(measure(name, adds, result, fault_window=window, recovery_s=recovery, notes=notes()))
    assert_consistent(result)
    assert_adds_answered(adds)


# -- one dependency failing while adds stream in: a table of timelines -------------------------

Switch = Callable[[Loopbacks], None]


@dataclass(frozen=True)
class Phase:
    """One stretch of a fault: `switch` turns it on, and it holds for `seconds`."""

    seconds: float
    switch: Switch


@dataclass(frozen=True)
class FaultTimeline:
    """Adds stream in at `adds_per_second` for LEAD_S, the phases in turn, then TAIL_S after
    `recover`; then everything must be scheduled, once. `name` keys the measurement in
    docs/reliability.md and `notes` (read once settled) goes with it."""

    name: str
    phases: tuple[Phase, ...]
    recover: Switch
    adds_per_second: float
    notes: Callable[[Loopbacks], dict[str, object]]
    # Every n-th add is an album added before by another user (dedupe across users).
    share_every: int = 4
    prepare: Switch = lambda _: None


def inngest_mode(mode: InngestMode) -> Switch:
    return lambda loopbacks: loopbacks.inngest.set_mode(mode)


def qdrant_mode(mode: QdrantMode, delay_s: float = 2.0) -> Switch:
    return lambda loopbacks: loopbacks.qdrant.set_mode(mode, delay_s=delay_s)


def tidal_answers(fault: Fault | None) -> Switch:
    def switch(loopbacks: Loopbacks) -> None:
        loopbacks.tidal.switches.every_request = fault

    return switch


def hang_past_the_adapters_timeout(loopbacks: Loopbacks) -> None:
    # A hang outlasts the adapter's 10 s request timeout.
    loopbacks.tidal.switches.hang_seconds = 15.0


TIMELINES = [
    pytest.param(
        FaultTimeline(
            name="inngest_down",
            phases=(Phase(INNGEST_DOWN_S, inngest_mode(InngestMode.DOWN)),),
            recover=inngest_mode(InngestMode.ACCEPT),
            adds_per_second=4.0,
            notes=lambda _: {"down_s": INNGEST_DOWN_S, "adds_per_s": 4.0},
        ),
        id="inngest down for 30 s delays events and loses none",
    ),
    pytest.param(
        FaultTimeline(
            name="qdrant_unreachable_then_slow",
            phases=(
                Phase(QDRANT_DOWN_S, qdrant_mode(QdrantMode.DOWN)),
                Phase(QDRANT_SLOW_S, qdrant_mode(QdrantMode.SLOW, delay_s=QDRANT_SLOW_REPLY_S)),
            ),
            recover=qdrant_mode(QdrantMode.NORMAL),
            adds_per_second=4.0,
            notes=lambda loopbacks: {
                "down_s": QDRANT_DOWN_S,
                "slow_s": QDRANT_SLOW_S,
                "slow_reply_s": QDRANT_SLOW_REPLY_S,
                "qdrant_requests": loopbacks.qdrant.request_count,
            },
        ),
        id="qdrant unreachable then slow schedules everything, failing open",
    ),
    pytest.param(
        FaultTimeline(
            name="tidal_429_5xx_timeouts",
            phases=(
                Phase(TIDAL_429_S, tidal_answers(Fault.rate_limited(retry_after="1"))),
                Phase(TIDAL_5XX_S, tidal_answers(Fault.server_error(503))),
                Phase(TIDAL_TIMEOUT_S, tidal_answers(Fault.timeout())),
            ),
            recover=tidal_answers(None),
            adds_per_second=2.0,
            notes=lambda loopbacks: {
                "rate_limited_s": TIDAL_429_S,
                "server_error_s": TIDAL_5XX_S,
                "timeout_s": TIDAL_TIMEOUT_S,
                "tidal_api_calls": loopbacks.tidal.counts.api,
            },
            # Only fresh albums: a cached one costs no TIDAL call and would dodge the fault.
            share_every=10**9,
            prepare=hang_past_the_adapters_timeout,
        ),
        id="tidal rate limiting then 5xx then timeouts delay scheduling only",
    ),
]


@pytest.mark.parametrize("timeline", TIMELINES)
async def test_a_dependency_failing_while_adds_stream_in_delays_scheduling_and_loses_nothing(
    timeline: FaultTimeline,
    loopbacks: Loopbacks,
    catalogue: Catalogue,
    fault_database: str,
    services: Services,
    driver: AddDriver,
    workdir: Path,
) -> None:
    service = await start_service(services, loopbacks, fault_database, workdir / "data")
    await warm_up(driver, service, catalogue)
    timeline.prepare(loopbacks)
    fault_s = sum(phase.seconds for phase in timeline.phases)
    count = int((LEAD_S + fault_s + TAIL_S) * timeline.adds_per_second)
    plan = plan_adds([service], catalogue, count, share_every=timeline.share_every)

    async def faults() -> tuple[float, float]:
        await asyncio.sleep(LEAD_S)
        started: float | None = None
        for phase in timeline.phases:
            await asyncio.to_thread(phase.switch, loopbacks)
            started = driver.now() if started is None else started
            await asyncio.sleep(phase.seconds)
        await asyncio.to_thread(timeline.recover, loopbacks)
        assert started is not None, "a timeline has at least one phase"
        return started, driver.now()

    adds, window = await asyncio.gather(
        driver.stream(plan, per_second=timeline.adds_per_second), faults()
    )
    await settle_and_check(
        timeline.name,
        database_url=fault_database,
        loopbacks=loopbacks,
        catalogue=catalogue,
        driver=driver,
        adds=adds,
        window=window,
        notes=lambda: timeline.notes(loopbacks),
    )


# -- the other faults, each of its own shape ----------------------------------------------------


async def test_sigkill_mid_album_then_restart_completes_with_only_same_id_resends(
    loopbacks: Loopbacks,
    catalogue: Catalogue,
    fault_database: str,
    services: Services,
    driver: AddDriver,
    workdir: Path,
) -> None:
    service = await start_service(services, loopbacks, fault_database, workdir / "data")
    await warm_up(driver, service, catalogue)
    loopbacks.tidal.switches.latency = 0.2  # 25 pages of 20: about 5 s to walk the album
    big = catalogue.new_album(500)
    plan = [*plan_adds([service], catalogue, 8), (service, "big-album-user", big.id)]
    before = await driver.stream(plan, per_second=20.0)

    async def ledger_rows(state: str | None = None) -> int:
        connection = await asyncpg.connect(dsn(fault_database))
        try:
            query = "SELECT count(*) FROM isrc_ledger WHERE isrc LIKE $1"
            args: list[object] = [big.items[0].isrc[:7] + "%"]
            if state is not None:
                query += " AND state = $2"
                args.append(state)
            count: int = await connection.fetchval(query, *args)
            return count
        finally:
            await connection.close()

    # The first page is written alone and the other 480 tracks together once the catalogue has
    # no more (ADR 0015): the album is mid-way from its first page until about 5 s later.
    async def mid_way() -> bool:
        return await ledger_rows() >= 20

    await wait_for(mid_way, within=60, interval=0.05, what="the big album's first page recorded")
    service.kill()
    killed_at = driver.now()
    recorded_at_kill = await ledger_rows()
    # Rows still `requested` may already have reached the Event API (sent, not yet marked):
    # only these may be sent again, under the same event id.
    in_flight_at_kill = await ledger_rows("requested")
    assert recorded_at_kill < len(big.items), "the kill came after the album was scheduled"

    service.start()
    await service.wait_ready()
    after = await driver.stream(plan_adds([service], catalogue, 8), per_second=20.0)
    recovery = await wait_until_scheduled(
        fault_database, loopbacks.inngest, catalogue, within=SETTLE_TIMEOUT_S
    )
    result = await check_consistency(fault_database, loopbacks.inngest, catalogue, driver.results)
    record(
        measure(
            "sigkill_mid_album",
            [*before, *after],
            result,
            fault_window=(killed_at, killed_at),
            recovery_s=recovery,
            notes={
                "album_tracks": len(big.items),
                "recorded_at_kill": recorded_at_kill,
                "requested_not_marked_at_kill": in_flight_at_kill,
            },
        )
    )
    assert_consistent(result, allowed_duplicate_sends=in_flight_at_kill)
    assert_adds_answered([*before, *after])


async def test_postgres_restarted_under_load_loses_no_committed_add(
    loopbacks: Loopbacks,
    catalogue: Catalogue,
    services: Services,
    driver: AddDriver,
    workdir: Path,
) -> None:
    # Not under pytest's tmp_path: pytest resets /tmp/pytest-of-<user> to 0700 whenever a
    # session starts, and the embedded server (running as another user when we are root)
    # would lose its data directory mid-test.
    pg_dir = Path(tempfile.mkdtemp(prefix="libingest-fault-pg-"))
    server = EmbeddedPostgres(pg_dir)
    server_url = await asyncio.to_thread(server.start)
    name, database_url = await create_database(server_url)
    try:
        service = await start_service(services, loopbacks, database_url, workdir / "data")
        await warm_up(driver, service, catalogue)
        rate = 4.0
        plan = plan_adds([service], catalogue, int((LEAD_S + POSTGRES_DOWN_S + 10.0) * rate))

        async def restart() -> tuple[float, float]:
            nonlocal server
            await asyncio.sleep(LEAD_S)
            stopping = driver.now()
            await asyncio.to_thread(server.stop)
            await asyncio.sleep(POSTGRES_DOWN_S)
            server = EmbeddedPostgres(pg_dir)
            url = await asyncio.to_thread(server.start)
            assert url == server_url, "the restarted server listens elsewhere"
            return stopping, driver.now()

        adds, window = await asyncio.gather(driver.stream(plan, per_second=rate), restart())
        recovery = await wait_until_scheduled(
            database_url, loopbacks.inngest, catalogue, within=SETTLE_TIMEOUT_S
        )
        result = await check_consistency(database_url, loopbacks.inngest, catalogue, driver.results)
        outside = [add for add in adds if add.at < window[0] or add.at > window[1] + 5.0]
        # A batch sent as the server stopped is sent again once it is back (same ids); the
        # same grace as the adds' below, for the first statements on the pool after a restart.
        re_sent = re_sends_across(
            loopbacks.inngest, driver.started + window[0], driver.started + window[1] + 5.0
        )
        record(
            measure(
                "postgres_restart",
                adds,
                result,
                fault_window=window,
                recovery_s=recovery,
                notes={
                    "down_s": POSTGRES_DOWN_S,
                    "failed_adds": result.failed_adds,
                    "failed_statuses": sorted({str(add.status) for add in adds if not add.ok}),
                    # When each failed add started, in seconds from the server's stop.
                    "failed_at_s": [round(add.at - window[0], 2) for add in adds if not add.ok],
                    "outage_s": round(window[1] - window[0], 2),
                    "re_sent_after_restart": re_sent,
                },
            )
        )
        assert_consistent(result, allowed_duplicate_sends=re_sent)
        # During the outage adds may fail (not committed); before it, and once it is over, not.
        assert_adds_answered(outside)
        assert service.process is not None and service.process.poll() is None
    finally:
        services.kill_all()
        await drop_database(server_url, name)
        await asyncio.to_thread(server.stop)
        shutil.rmtree(pg_dir, ignore_errors=True)


async def test_two_processes_sharing_a_database_dispatch_each_isrc_once(
    loopbacks: Loopbacks,
    catalogue: Catalogue,
    fault_database: str,
    services: Services,
    driver: AddDriver,
    workdir: Path,
) -> None:
    # Both start together: their migrations race for the same fresh database.
    first, second = await asyncio.gather(
        start_service(services, loopbacks, fault_database, workdir / "a", "first"),
        start_service(services, loopbacks, fault_database, workdir / "b", "second"),
    )
    await warm_up(driver, first, catalogue)
    await warm_up(driver, second, catalogue)
    rate = 8.0
    # Every album is added on both processes at once, by different users, besides the sharing.
    plan = []
    for step in plan_adds([first, second], catalogue, int(15 * rate / 2), share_every=3):
        service, user, album_id = step
        plan.append(step)
        plan.append((second if service is first else first, f"{user}-twin", album_id))
    adds = await driver.stream(plan, per_second=rate)
    await settle_and_check(
        "two_processes",
        database_url=fault_database,
        loopbacks=loopbacks,
        catalogue=catalogue,
        driver=driver,
        adds=adds,
        window=(0.0, driver.now()),
        notes=lambda: {"processes": 2, "adds_per_s": rate},
    )


async def test_playlists_added_and_re_synced_while_tidal_and_inngest_fail_lose_nothing(
    loopbacks: Loopbacks,
    catalogue: Catalogue,
    fault_database: str,
    services: Services,
    driver: AddDriver,
    workdir: Path,
) -> None:
    """Playlists (ADR 0029): tracks shared between playlists, a video and a repeat in each,
    added by several users while TIDAL answers 503 and Inngest is down; meanwhile half of them
    gain tracks and are added again (a re-sync, some while their job is still running). Once
    it is over, every playlist's tracks as TIDAL serves them now are sent, each ISRC once."""
    service = await start_service(services, loopbacks, fault_database, workdir / "data")
    await warm_up(driver, service, catalogue)
    sources = [catalogue.new_album(30) for _ in range(4)]
    video = LoopbackTrack(id="990000001", title="A video", isrc=None, kind="videos")

    def mix(n: int) -> list[LoopbackTrack]:
        first, second = sources[n % 4].items, sources[(n + 1) % 4].items
        return [*first[:20], video, *second[10:25], first[0]]

    playlists = [catalogue.new_playlist(mix(n)) for n in range(10)]
    adds = [(service, f"listener-{n % 5}", p.id) for n, p in enumerate(playlists)]
    adds += [(service, f"sharer-{n}", playlists[n].id) for n in range(3)]  # across users
    rate = 2.0

    async def faults_and_re_syncs() -> tuple[tuple[float, float], list[AddResult]]:
        await asyncio.sleep(LEAD_S)
        started = driver.now()
        await asyncio.to_thread(inngest_mode(InngestMode.DOWN), loopbacks)
        await asyncio.to_thread(tidal_answers(Fault.server_error(503)), loopbacks)
        re_adds: list[AddResult] = []
        for n, playlist in enumerate(playlists[:5]):
            catalogue.extend_playlist(playlist.id, catalogue.new_album(15).items)
            re_adds.append(await driver.add(service, f"listener-{n % 5}", playlist.id))
            await asyncio.sleep(PLAYLIST_FAULT_S / 5)
        await asyncio.to_thread(tidal_answers(None), loopbacks)
        await asyncio.to_thread(inngest_mode(InngestMode.ACCEPT), loopbacks)
        ended = driver.now()
        await asyncio.sleep(TAIL_S)
        for n, playlist in enumerate(playlists[:2]):  # once more, after recovery
            catalogue.extend_playlist(playlist.id, catalogue.new_album(5).items)
            re_adds.append(await driver.add(service, f"listener-{n % 5}", playlist.id))
        return (started, ended), re_adds

    streamed_adds, (window, re_adds) = await asyncio.gather(
        driver.stream(adds, per_second=rate), faults_and_re_syncs()
    )
    await settle_and_check(
        "playlists_re_synced_under_faults",
        database_url=fault_database,
        loopbacks=loopbacks,
        catalogue=catalogue,
        driver=driver,
        adds=[*streamed_adds, *re_adds],
        window=window,
        notes=lambda: {
            "playlists": len(playlists),
            "re_adds": len(re_adds),
            "fault_s": PLAYLIST_FAULT_S,
            "tidal_playlist_reads": loopbacks.tidal.counts.by_endpoint["playlist"],
            "tidal_api_calls": loopbacks.tidal.counts.api,
        },
    )
    assert all(add.ok for add in re_adds)
