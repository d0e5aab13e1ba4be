"""The TIDAL pace shared through PostgreSQL: several instances, each with its own engine as a
separate process would have, against one real database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime

import pytest
from sqlalchemy import RowMapping, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.catalog_tables import tidal_pace
from adapters.postgres.database import create_engine
from adapters.postgres.tidal_pace import PostgresPace
from adapters.tidal.pace import METER_HEADROOM, Pace, TokenBucketPace
from application.ports.catalog import READING_FOR
from domain.values import UserId
from tests.unit.fakes import FakeSeconds

RATE = 20.0
BURST = 2
WINDOW_SECONDS = 1.5


@asynccontextmanager
async def _processes(database_url: str, count: int) -> AsyncIterator[list[PostgresPace]]:
    """`count` paces, each on an engine of its own."""
    engines = [create_engine(database_url, pool_size=1) for _ in range(count)]
    paces = [PostgresPace(e, requests_per_second=RATE, burst=BURST) for e in engines]
    try:
        yield paces
    finally:
        for pace in paces:
            await pace.aclose()
        for engine in engines:
            await engine.dispose()


async def _bucket(engine: AsyncEngine) -> RowMapping | None:
    async with engine.connect() as connection:
        return (await connection.execute(select(tidal_pace))).mappings().first()


async def _database_now(engine: AsyncEngine) -> datetime:
    async with engine.connect() as connection:
        now: datetime = (await connection.execute(select(func.clock_timestamp()))).scalar_one()
        return now


async def _eventually(condition: Callable[[], Awaitable[bool]], within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition never held")
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("process_count", [2, 10])
async def test_instances_sharing_a_database_admit_no_more_than_one_bucket_allows(
    engine: AsyncEngine, database_url: str, process_count: int
) -> None:
    admissions: list[float] = []

    async def call_tidal_until(pace: PostgresPace, deadline: float) -> None:
        while time.monotonic() < deadline:
            await pace.acquire()
            admissions.append(time.monotonic())

    async with _processes(database_url, process_count) as paces:
        started = time.monotonic()
        deadline = started + WINDOW_SECONDS
        # Two callers per process, so the in-process queue is exercised as well.
        await asyncio.gather(*(call_tidal_until(pace, deadline) for pace in paces for _ in "ab"))

    elapsed = max(admissions) - started
    allowed = BURST + RATE * elapsed
    assert len(admissions) <= allowed + 1  # one of tolerance for float rounding at the edges
    # And it is not stuck: most of what the rate allows was admitted.
    assert len(admissions) >= 0.7 * RATE * WINDOW_SECONDS


async def test_a_retry_after_seen_by_one_instance_holds_back_the_others(
    engine: AsyncEngine, database_url: str
) -> None:
    async with _processes(database_url, 2) as (got_the_429, other):
        await other.acquire()

        got_the_429.observe({"Retry-After": "1"})

        async def block_is_shared() -> bool:
            bucket = await _bucket(engine)
            return bucket is not None and bucket["blocked_until"] is not None

        # Written by a background task: the instance that saw the 429 does not call again.
        await _eventually(block_is_shared)
        bucket = await _bucket(engine)
        assert bucket is not None
        blocked_until = bucket["blocked_until"]
        assert bucket["tokens"] >= 1  # a token is there: only the block can hold `other` back

        await other.acquire()
        admitted_at = await _database_now(engine)

    assert admitted_at >= blocked_until


async def test_tidal_rate_limit_headers_become_the_shared_bucket_rate(
    engine: AsyncEngine, database_url: str
) -> None:
    async with _processes(database_url, 2) as (observer, other):
        await other.acquire()
        bucket = await _bucket(engine)
        assert bucket is not None
        assert (bucket["refill_per_second"], bucket["capacity"]) == (RATE, BURST)

        # TIDAL's own units: a request costs 5 tokens, 1 refills per second, 10 at most.
        observer.observe(
            {
                "x-ratelimit-remaining": "0",
                "x-ratelimit-requested-tokens": "5",
                "x-ratelimit-burst-capacity": "10",
                "x-ratelimit-replenish-rate": "1",
            }
        )

        async def rate_is_shared() -> bool:
            bucket = await _bucket(engine)
            # 0.2 requests/s as TIDAL says, used at METER_HEADROOM of it (ADR 0028).
            return bucket is not None and bucket["refill_per_second"] == pytest.approx(
                0.2 * METER_HEADROOM
            )

        await _eventually(rate_is_shared)
        bucket = await _bucket(engine)

    assert bucket is not None
    assert bucket["capacity"] == pytest.approx(2.0)
    # TIDAL said nothing remains: the shared bucket holds less than one request.
    assert bucket["tokens"] < 1


async def _admission_order(pace: Pace, waiting: list[tuple[str, bool]]) -> list[str]:
    """Who was admitted in what order, when `waiting` (requester, opens_item) all ask at once."""
    admitted: list[str] = []

    async def ask(requester: str, opens_item: bool) -> None:
        READING_FOR.set(UserId(requester))
        await pace.acquire(opens_item=opens_item)
        admitted.append(f"{requester}:{'first' if opens_item else 'later'}")

    await asyncio.gather(*(ask(requester, opens) for requester, opens in waiting))
    return admitted


async def test_a_new_items_first_request_overtakes_the_later_pages_waiting_at_the_shared_pace(
    engine: AsyncEngine, database_url: str
) -> None:
    async with _processes(database_url, 1) as (pace,):
        # The flood empties the burst first, so every request below waits for a slot.
        READING_FOR.set(UserId("flood"))
        for _ in range(BURST):
            await pace.acquire()

        order = await _admission_order(
            pace, [("flood", False), ("flood", False), ("flood", True), ("newcomer", True)]
        )

    # First requests before later pages; among them the requester served least recently
    # (the newcomer, never) first; the flood's pages in their order.
    assert order == ["newcomer:first", "flood:first", "flood:later", "flood:later"]


async def test_the_in_process_pace_admits_in_the_same_fair_order() -> None:
    clock = FakeSeconds()
    pace = TokenBucketPace(requests_per_second=1, burst=1, clock=clock, sleep=clock.sleep)
    await pace.acquire()

    order = await _admission_order(pace, [("flood", False), ("flood", False), ("newcomer", True)])

    assert order == ["newcomer:first", "flood:later", "flood:later"]
    assert clock.now == pytest.approx(3.0)  # one slot each, none lost to the reordering
