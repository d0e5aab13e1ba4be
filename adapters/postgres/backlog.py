"""The service's backlog as PostgreSQL holds it, for operators: the /metrics gauges read it at
scrape time and `libingest status` prints it. Read-only, one short transaction; every process
sees the same figures (the counters of /metrics, by contrast, are each process's own)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# Pending jobs by age since their add: the label and the bucket's upper bound in seconds.
PENDING_AGES: tuple[tuple[str, float | None], ...] = (
    ("0-1m", 60.0),
    ("1m-10m", 600.0),
    ("10m-1h", 3600.0),
    ("1h+", None),
)


@dataclass(frozen=True, slots=True)
class Failure:
    """A scheduling job that gave up, or an ISRC whose ingestion failed."""

    what: str  # "album 123", "track 456" or "ISRC XXX..."
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class PaceState:
    """The shared TIDAL pace's bucket now (refilled to this moment, held at 0 while a 429's
    Retry-After blocks every process)."""

    tokens: float
    capacity: float
    requests_per_second: float
    blocked_until: datetime | None


@dataclass(frozen=True, slots=True)
class Backlog:
    jobs_by_status: dict[str, int]
    pending_by_age: dict[str, int]
    oldest_pending: datetime | None
    ledger_by_state: dict[str, int]
    pace: PaceState | None  # None: no TIDAL call was ever paced (the sample catalogue)
    recent_failures: list[Failure] = field(default_factory=list)
    # The settled states ("done" jobs, "indexed" ledger rows) counted from PostgreSQL's row
    # estimate rather than row by row: their tables are past EXACT_COUNT_MAX_BYTES.
    estimated: tuple[str, ...] = ()


# A table up to this size is counted row by row at every scrape (a few milliseconds); past it,
# the states few rows are in are counted from their partial indexes and the settled rows (done
# jobs, indexed ISRCs: nearly every row in time) are PostgreSQL's live-row estimate less those.
# Counting them all read the whole table: 170 ms for the jobs and 250 ms for the ledger at
# 10^6 library items, at every /metrics scrape (bench/data_volume.py, ADR 0033).
EXACT_COUNT_MAX_BYTES = 8 * 2**20

_SIZES = text(
    """
    SELECT c.relname AS name, pg_relation_size(c.oid) AS bytes,
           -- n_live_tup follows every insert and delete without ANALYZE (CI's server has no
           -- autovacuum); reltuples, the last ANALYZE's, after a crash has reset the former.
           CASE WHEN s.n_live_tup > 0 THEN s.n_live_tup ELSE greatest(c.reltuples, 0) END
             AS estimate
    FROM pg_class AS c JOIN pg_stat_user_tables AS s ON s.relid = c.oid
    WHERE c.oid IN ('scheduling_jobs'::regclass, 'isrc_ledger'::regclass)
    """
)
_JOBS_ALL = text("SELECT status, count(*) FROM scheduling_jobs GROUP BY status")
# Pending jobs are on ix_scheduling_jobs_due's predicate, failed ones on ix_scheduling_jobs_failed.
_JOBS_PENDING = text(
    """
    SELECT count(*) AS jobs,
           count(*) FILTER (WHERE created_at > now() - interval '1 minute') AS under_1m,
           count(*) FILTER (WHERE created_at <= now() - interval '1 minute'
                              AND created_at > now() - interval '10 minutes') AS under_10m,
           count(*) FILTER (WHERE created_at <= now() - interval '10 minutes'
                              AND created_at > now() - interval '1 hour') AS under_1h,
           count(*) FILTER (WHERE created_at <= now() - interval '1 hour') AS over_1h,
           min(created_at) AS oldest
    FROM scheduling_jobs WHERE status = 'pending'
    """
)
_JOBS_FAILED = text("SELECT count(*) FROM scheduling_jobs WHERE status = 'failed'")
# Each state few rows are in has its partial index (migrations 0003 and 0010).
_LEDGER_FEW = text(
    """
    SELECT (SELECT count(*) FROM isrc_ledger WHERE state = 'requested') AS requested,
           (SELECT count(*) FROM isrc_ledger WHERE state = 'dispatched') AS dispatched,
           (SELECT count(*) FROM isrc_ledger WHERE state = 'failed') AS failed
    """
)
_LEDGER_ALL = text("SELECT state, count(*) FROM isrc_ledger GROUP BY state")
_PACE = text(
    """
    SELECT CASE WHEN blocked_until > now() THEN 0
                ELSE least(capacity, tokens + extract(epoch FROM now() - updated_at)
                                              * refill_per_second) END,
           capacity, refill_per_second, blocked_until
    FROM tidal_pace ORDER BY bucket LIMIT 1
    """
)
_FAILURES = text(
    """
    (SELECT item.kind || ' ' || item.catalog_id AS what, job.last_error AS reason,
            job.updated_at AS at
     FROM scheduling_jobs AS job JOIN library_items AS item ON item.id = job.library_item_id
     WHERE job.status = 'failed' ORDER BY job.updated_at DESC LIMIT :limit)
    UNION ALL
    (SELECT 'ISRC ' || isrc, coalesce(last_error, ''), updated_at
     FROM isrc_ledger WHERE state = 'failed' ORDER BY updated_at DESC LIMIT :limit)
    ORDER BY at DESC LIMIT :limit
    """
)


async def read_backlog(
    engine: AsyncEngine, *, failures: int = 0, exact_count_max_bytes: int = EXACT_COUNT_MAX_BYTES
) -> Backlog:
    """The backlog now, with the `failures` most recent failures (none by default: the
    metrics endpoint wants only the counts)."""
    async with engine.connect() as connection:
        return await backlog_on(
            connection, failures=failures, exact_count_max_bytes=exact_count_max_bytes
        )


async def backlog_on(
    connection: AsyncConnection,
    *,
    failures: int = 0,
    exact_count_max_bytes: int = EXACT_COUNT_MAX_BYTES,
) -> Backlog:
    """read_backlog on a connection the caller holds."""
    sizes = {row.name: row for row in await connection.execute(_SIZES)}
    pending_row = (await connection.execute(_JOBS_PENDING)).one()
    ages = (pending_row.under_1m, pending_row.under_10m, pending_row.under_1h, pending_row.over_1h)
    pending = {label: int(n) for (label, _), n in zip(PENDING_AGES, ages, strict=True)}
    jobs, ledger = sizes["scheduling_jobs"], sizes["isrc_ledger"]
    if jobs.bytes <= exact_count_max_bytes:
        jobs_by_status = await _every_state(connection, _JOBS_ALL)
    else:
        failed = (await connection.execute(_JOBS_FAILED)).scalar_one()
        few = {"pending": pending_row.jobs, "failed": failed}
        jobs_by_status = counts_with_estimate(jobs.estimate, few, "done")
    if ledger.bytes <= exact_count_max_bytes:
        ledger_by_state = await _every_state(connection, _LEDGER_ALL)
    else:
        few_states = (await connection.execute(_LEDGER_FEW)).one()._mapping
        ledger_by_state = counts_with_estimate(ledger.estimate, dict(few_states), "indexed")
    pace_row = (await connection.execute(_PACE)).first()
    pace = (
        None
        if pace_row is None
        else PaceState(
            tokens=float(pace_row[0]),
            capacity=float(pace_row[1]),
            requests_per_second=float(pace_row[2]),
            blocked_until=pace_row[3],
        )
    )
    recent: list[Failure] = []
    if failures > 0:
        rows = await connection.execute(_FAILURES, {"limit": failures})
        recent = [Failure(row.what, row.reason or "", row.at) for row in rows]
    return Backlog(
        jobs_by_status,
        pending,
        pending_row.oldest,
        ledger_by_state,
        pace,
        recent,
        estimated=tuple(
            settled
            for settled, size in (("done", jobs), ("indexed", ledger))
            if size.bytes > exact_count_max_bytes
        ),
    )


async def _every_state(connection: AsyncConnection, statement: TextClause) -> dict[str, int]:
    return {state: int(n) for state, n in await connection.execute(statement)}


def counts_with_estimate(estimate: int, few: Mapping[str, int], settled: str) -> dict[str, int]:
    """The few-row states' exact counts, and the settled state as the table's estimated rows
    less those: never below zero, as each process reports its inserts and deletes to the
    estimate a moment after its commit, so the estimate may lag the exact counts."""
    counts = {state: int(n) for state, n in few.items() if n}
    return {**counts, settled: max(int(estimate) - sum(counts.values()), 0)}
