"""The operator's backlog (adapters/postgres/backlog.py) against a real server: counted row by
row while its tables are small; past the size limit, the states few rows are in counted
exactly from their partial indexes and the settled ones from PostgreSQL's live-row estimate,
and said to be estimates (ADR 0033)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.backlog import Backlog, counts_with_estimate, read_backlog

JOBS = {"pending": 2, "failed": 1, "done": 6}
LEDGER = {"requested": 1, "dispatched": 2, "failed": 3, "indexed": 20}


async def _fill(engine: AsyncEngine) -> datetime:
    """The jobs and ledger rows above; answers when they were added."""
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        for number, status in enumerate(s for s, count in JOBS.items() for _ in range(count)):
            item_id = uuid.uuid4()
            await connection.execute(
                text(
                    "INSERT INTO library_items (id, user_id, kind, catalog_id, added_at)"
                    " VALUES (:id, 'alice', 'track', :catalog_id, :at)"
                ),
                {"id": item_id, "catalog_id": str(100 + number), "at": now},
            )
            await connection.execute(
                text(
                    "INSERT INTO scheduling_jobs (library_item_id, user_id, status, run_after,"
                    " created_at, updated_at) VALUES (:id, 'alice', :status, :at, :at, :at)"
                ),
                # The second pending job was added two hours ago.
                {"id": item_id, "status": status, "at": now - timedelta(hours=2 * number)},
            )
        for number, state in enumerate(s for s, count in LEDGER.items() for _ in range(count)):
            await connection.execute(
                text(
                    "INSERT INTO isrc_ledger (isrc, state, event_id, track_id, requested_at,"
                    " dispatched_at, next_attempt_at, updated_at)"
                    " VALUES (:isrc, :state, :isrc, '1', :at, :dispatched, :at, :at)"
                ),
                {
                    "isrc": f"QZBKL26{number:05d}",
                    "state": state,
                    "at": now,
                    "dispatched": now if state == "dispatched" else None,
                },
            )
        # PostgreSQL's row statistics are sent by this backend a moment after its commit; ask
        # for them at once.
        await connection.execute(text("SELECT pg_stat_force_next_flush()"))
    return now


async def _with_the_estimate_it_used(engine: AsyncEngine) -> tuple[Backlog, dict[str, int]]:
    """The backlog past the size limit, and PostgreSQL's live-row estimates it was computed
    from: read before and after, until they agree (each backend reports its inserts a moment
    after its commit, and earlier tests' reports may still arrive)."""
    deadline = time.monotonic() + 30
    while True:
        before = await _live_rows(engine)
        backlog = await read_backlog(engine, exact_count_max_bytes=0)
        if before == await _live_rows(engine) and before["isrc_ledger"] >= sum(LEDGER.values()):
            return backlog, before
        assert time.monotonic() < deadline, f"the row estimates never settled: {before}"
        await asyncio.sleep(0.2)


async def _live_rows(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT relname, n_live_tup FROM pg_stat_user_tables"
                " WHERE relname IN ('scheduling_jobs', 'isrc_ledger')"
            )
        )
        return {name: int(n) for name, n in rows}


async def test_small_tables_are_counted_row_by_row(engine: AsyncEngine) -> None:
    await _fill(engine)

    backlog = await read_backlog(engine)

    assert backlog.jobs_by_status == JOBS
    assert backlog.ledger_by_state == LEDGER
    assert backlog.pending_by_age == {"0-1m": 1, "1m-10m": 0, "10m-1h": 0, "1h+": 1}
    assert backlog.estimated == ()


async def test_past_the_size_limit_the_settled_rows_are_estimated_and_the_rest_exact(
    engine: AsyncEngine,
) -> None:
    now = await _fill(engine)

    backlog, live = await _with_the_estimate_it_used(engine)

    few_jobs = {"pending": JOBS["pending"], "failed": JOBS["failed"]}
    assert backlog.jobs_by_status == {
        **few_jobs,
        "done": max(live["scheduling_jobs"] - sum(few_jobs.values()), 0),
    }
    few_ledger = {state: n for state, n in LEDGER.items() if state != "indexed"}
    assert backlog.ledger_by_state == {
        **few_ledger,
        "indexed": live["isrc_ledger"] - sum(few_ledger.values()),
    }
    assert backlog.pending_by_age == {"0-1m": 1, "1m-10m": 0, "10m-1h": 0, "1h+": 1}
    assert backlog.oldest_pending is not None
    assert abs((backlog.oldest_pending - (now - timedelta(hours=2))).total_seconds()) < 1
    assert backlog.estimated == ("done", "indexed")


def test_an_estimate_behind_the_exact_counts_never_goes_below_zero() -> None:
    few = {"requested": 3, "dispatched": 0, "failed": 9}

    assert counts_with_estimate(5, few, "indexed") == {"requested": 3, "failed": 9, "indexed": 0}
    assert counts_with_estimate(100, few, "indexed") == {
        "requested": 3,
        "failed": 9,
        "indexed": 88,
    }
