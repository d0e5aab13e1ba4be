"""What the progress triggers (migration 0007, ADR 0031) add to the writes they watch.

    .venv/bin/python -m bench.progress_triggers postgresql://postgres@127.0.0.1:5432/postgres

On a scratch database of that server, migrated, each write below is measured two ways:
- server side: EXPLAIN ANALYZE of the write, SAMPLES times, gives the time spent in the
  progress trigger and in the whole statement (medians). This is the figure to read on a busy
  machine: it does not include the client, the network or the wait for a core;
- end to end: ROUNDS transactions of the write over one connection, with the triggers enabled
  and disabled in alternating blocks (so that the machine's load falls on both alike); the
  median of each and their ratio. The commit's own NOTIFY work (the queue, the signal to
  listeners) shows only here.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from adapters.postgres.database import create_engine
from adapters.postgres.migrate import upgrade_to_head
from tests.support.scratch_database import (
    asyncpg_dsn,
    create_scratch_database,
    drop_scratch_database,
)

ROUNDS = 2000
SAMPLES = 200
BLOCK = 100  # writes per block before switching the triggers on or off
TABLES = ("isrc_ledger", "scheduling_jobs", "item_tracks", "library_items")

Write = Callable[[asyncpg.Connection, int], Awaitable[object]]


async def _setup(connection: asyncpg.Connection) -> uuid.UUID:
    item_id = uuid.uuid4()
    await connection.execute(
        "INSERT INTO library_items (id, user_id, kind, catalog_id, added_at)"
        " VALUES ($1, 'bench', 'album', '1', now())",
        item_id,
    )
    await connection.execute(
        "INSERT INTO scheduling_jobs (library_item_id, user_id, status, run_after, created_at,"
        " updated_at) VALUES ($1, 'bench', 'pending', now(), now(), now())",
        item_id,
    )
    await connection.execute(
        "INSERT INTO isrc_ledger (isrc, state, event_id, track_id, requested_at,"
        " next_attempt_at, updated_at)"
        " SELECT 'XXBEN' || lpad(n::text, 7, '0'), 'requested', 'e', n::text, now(), now(),"
        " now() FROM generate_series(1, 50) AS n"
    )
    return item_id


def _writes(item_id: uuid.UUID) -> dict[str, Write]:
    async def ledger_move(connection: asyncpg.Connection, n: int) -> object:
        # A worker's mark_indexed and back: one row whose state moves (announced).
        state = "indexed" if n % 2 else "requested"
        return await connection.execute(
            "UPDATE isrc_ledger SET state = $1, updated_at = now() WHERE isrc = 'XXBEN0000001'",
            state,
        )

    async def ledger_batch(connection: asyncpg.Connection, n: int) -> object:
        # A dispatch of 50 rows (announced: 50 ISRCs in one payload).
        state = "dispatched" if n % 2 else "requested"
        return await connection.execute(
            "UPDATE isrc_ledger SET state = $1, updated_at = now() WHERE isrc LIKE 'XXBEN%'",
            state,
        )

    async def lease_renewal(connection: asyncpg.Connection, n: int) -> object:
        # The relay's heartbeat: the trigger runs and announces nothing.
        return await connection.execute(
            "UPDATE scheduling_jobs SET locked_until = now(), updated_at = now()"
            " WHERE library_item_id = $1",
            item_id,
        )

    return {
        "ledger row moved (1 row)": ledger_move,
        "ledger batch moved (50 rows)": ledger_batch,
        "lease renewed (nothing announced)": lease_renewal,
    }


async def _measure(connection: asyncpg.Connection, write: Write) -> tuple[float, float]:
    timings: dict[bool, list[float]] = {True: [], False: []}
    for block_start in range(0, ROUNDS, BLOCK):
        enabled = (block_start // BLOCK) % 2 == 0
        verb = "ENABLE" if enabled else "DISABLE"
        for table in TABLES:
            await connection.execute(f"ALTER TABLE {table} {verb} TRIGGER USER")
        for n in range(block_start, block_start + BLOCK):
            started = time.perf_counter()
            async with connection.transaction():
                await write(connection, n)
            timings[enabled].append((time.perf_counter() - started) * 1e6)
    return statistics.median(timings[True]), statistics.median(timings[False])


async def _explained(connection: asyncpg.Connection, write: Write) -> tuple[float, float]:
    """Median milliseconds in the triggers, and in the statement, from EXPLAIN ANALYZE."""
    triggers, statements = [], []
    explain = _Explaining(connection)
    for n in range(SAMPLES):
        async with connection.transaction():
            await write(explain, n)  # type: ignore[arg-type]
        plan = explain.plan
        triggers.append(sum(trigger["Time"] for trigger in plan.get("Triggers", ())))
        statements.append(plan["Execution Time"])
    return statistics.median(triggers), statistics.median(statements)


class _Explaining:
    """Runs a write as EXPLAIN ANALYZE and keeps its plan."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection
        self.plan: dict[str, Any] = {}

    async def execute(self, statement: str, *arguments: object) -> None:
        answer = await self._connection.fetchval(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", *arguments
        )
        self.plan = json.loads(answer)[0]


async def main(server_url: str) -> None:
    name, url = await create_scratch_database(server_url, "libingest_bench_triggers")
    try:
        engine = create_engine(url, pool_size=1)
        await upgrade_to_head(engine)
        await engine.dispose()
        connection = await asyncpg.connect(asyncpg_dsn(url))
        try:
            item_id = await _setup(connection)
            print(f"load average {_load()}")
            print(f"server side, median of {SAMPLES} (ms): trigger / whole statement")
            for label, write in _writes(item_id).items():
                in_trigger, in_statement = await _explained(connection, write)
                print(f"  {label:36} {in_trigger:6.3f} / {in_statement:6.3f}")
            print(f"end to end, median of {ROUNDS // 2} transactions each (µs): with / without")
            for label, write in _writes(item_id).items():
                with_triggers, without = await _measure(connection, write)
                print(
                    f"  {label:36} {with_triggers:6.0f} / {without:6.0f}"
                    f"  ratio {with_triggers / without:.2f}"
                )
        finally:
            await connection.close()
    finally:
        await drop_scratch_database(server_url, name)


def _load() -> str:
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
