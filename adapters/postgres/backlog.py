"""The service's backlog as PostgreSQL holds it, for operators: the /metrics gauges read it at
scrape time and `libingest status` prints it. Read-only, one short transaction; every process
sees the same figures (the counters of /metrics, by contrast, are each process's own)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

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


_JOBS = text(
    """
    SELECT status, count(*) AS jobs,
           count(*) FILTER (WHERE status = 'pending' AND created_at > now() - interval '1 minute')
             AS under_1m,
           count(*) FILTER (WHERE status = 'pending' AND created_at <= now() - interval '1 minute'
                                  AND created_at > now() - interval '10 minutes') AS under_10m,
           count(*) FILTER (WHERE status = 'pending' AND created_at <= now() - interval '10 minutes'
                                  AND created_at > now() - interval '1 hour') AS under_1h,
           count(*) FILTER (WHERE status = 'pending' AND created_at <= now() - interval '1 hour')
             AS over_1h,
           min(created_at) FILTER (WHERE status = 'pending') AS oldest
    FROM scheduling_jobs GROUP BY status
    """
)
_LEDGER = text("SELECT state, count(*) FROM isrc_ledger GROUP BY state")
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


async def read_backlog(engine: AsyncEngine, *, failures: int = 0) -> Backlog:
    """The backlog now, with the `failures` most recent failures (none by default: the
    metrics endpoint wants only the counts)."""
    async with engine.connect() as connection:
        jobs_by_status: dict[str, int] = {}
        pending = dict.fromkeys((label for label, _ in PENDING_AGES), 0)
        oldest: datetime | None = None
        for row in await connection.execute(_JOBS):
            jobs_by_status[row.status] = int(row.jobs)
            if row.status == "pending":
                ages = (row.under_1m, row.under_10m, row.under_1h, row.over_1h)
                pending = {label: int(n) for (label, _), n in zip(PENDING_AGES, ages, strict=True)}
                oldest = row.oldest
        ledger = {state: int(n) for state, n in await connection.execute(_LEDGER)}
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
    return Backlog(jobs_by_status, pending, oldest, ledger, pace, recent)
