"""`libingest status` and `libingest reschedule` as an operator runs them, against a database
holding a backlog: what is pending and for how long, the ledger, the pace, the latest failures;
and the reschedule's progress, batch by batch."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.terminal import run_at_a_terminal

LIBINGEST = str(Path(sys.executable).parent / "libingest")


def _run(database_url: str, tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = os.environ | {"DATABASE_URL": database_url, "LIBINGEST_DATA_DIR": str(tmp_path)}
    return subprocess.run(
        [LIBINGEST, *arguments], env=environment, capture_output=True, text=True, timeout=120
    )


async def _item_with_job(
    engine: AsyncEngine, catalog_id: str, *, status: str, age: timedelta, error: str | None = None
) -> None:
    item_id = uuid.uuid4()
    added = datetime.now(UTC) - age
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO library_items (id, user_id, kind, catalog_id, added_at)"
                " VALUES (:id, 'alice', 'album', :catalog_id, :added)"
            ),
            {"id": item_id, "catalog_id": catalog_id, "added": added},
        )
        await connection.execute(
            text(
                "INSERT INTO scheduling_jobs (library_item_id, user_id, status, attempts,"
                " run_after, created_at, updated_at, last_error)"
                " VALUES (:id, 'alice', :status, 1, :added, :added, :added, :error)"
            ),
            {"id": item_id, "status": status, "added": added, "error": error},
        )


async def _ledger_rows(engine: AsyncEngine, state: str, count: int, *, first: int = 0) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO isrc_ledger (isrc, state, event_id, track_id, requested_at,"
                " next_attempt_at, updated_at, last_error)"
                " SELECT 'XXOPS' || lpad(n::text, 7, '0'), :state, 'e' || n, n::text,"
                " now(), now(), now(), CASE WHEN :state = 'failed' THEN 'track gone' END"
                " FROM generate_series(CAST(:first AS integer), :last) AS n"
            ),
            {"state": state, "first": first, "last": first + count - 1},
        )


async def test_status_shows_the_backlog_the_pace_and_the_latest_failures(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    await _item_with_job(engine, "101", status="pending", age=timedelta(seconds=5))
    await _item_with_job(engine, "102", status="pending", age=timedelta(hours=3))
    await _item_with_job(engine, "103", status="done", age=timedelta(minutes=3))
    await _item_with_job(
        engine,
        "777",
        status="failed",
        age=timedelta(minutes=1),
        error="album 777 is not in the catalogue",
    )
    await _ledger_rows(engine, "indexed", 7)
    await _ledger_rows(engine, "failed", 1, first=100)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO tidal_pace (bucket, tokens, capacity, refill_per_second, updated_at)"
                " VALUES ('tidal', 1, 2, 0.2, now())"
            )
        )

    status = _run(database_url, tmp_path, "status")

    assert status.returncode == 0, status.stderr
    lines = " ".join(status.stdout.split())
    assert "pending 2 (by age 0-1m: 1, 1m-10m: 0, 10m-1h: 0, 1h+: 1; oldest added 3 h ago)" in lines
    assert "done 1" in lines and "failed 1" in lines
    assert "requested 0 dispatched 0 indexed 7 failed 1" in lines
    assert "of 2 requests free now, refilled at 0.2/s; not blocked" in lines
    assert "album 777" in lines and "album 777 is not in the catalogue" in lines
    assert "ISRC XXOPS0000100" in lines and "track gone" in lines


async def test_reschedule_all_shows_its_progress_batch_by_batch(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    await _ledger_rows(engine, "failed", 1500)
    await _ledger_rows(engine, "dispatched", 1000, first=5000)
    await _ledger_rows(engine, "indexed", 10, first=9000)

    reschedule = _run(database_url, tmp_path, "reschedule", "--all")

    assert reschedule.returncode == 0, reschedule.stderr
    progress = [line for line in reschedule.stderr.splitlines() if line.startswith("rescheduled")]
    assert progress == [
        "rescheduled 1000 of 2500 requests (40%)",
        "rescheduled 2000 of 2500 requests (80%)",
        "rescheduled 2500 of 2500 requests (100%)",
    ]
    assert reschedule.stdout.startswith("2500 requests put back")


async def test_reschedule_at_a_terminal_draws_a_progress_bar(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    await _ledger_rows(engine, "failed", 1200)
    environment = os.environ | {"DATABASE_URL": database_url, "LIBINGEST_DATA_DIR": str(tmp_path)}

    code, shown = run_at_a_terminal([LIBINGEST, "reschedule"], environment)

    assert code == 0
    assert "1200/1200" in shown
    assert "━" in shown  # the bar
