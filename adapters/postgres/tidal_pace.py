"""One pace to TIDAL for every process: a token bucket kept in a PostgreSQL row.

Each process paced by itself would multiply what TIDAL receives by the number of processes. Here
every process takes its tokens from one `tidal_pace` row, under a row lock held for a few
milliseconds, and measures time with the database's `clock_timestamp()`, so processes on machines
whose clocks disagree still agree on how much the bucket has refilled.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import RowMapping, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.postgres.catalog_tables import tidal_pace
from adapters.postgres.database import disposable_transaction
from adapters.tidal.pace import (
    DEFAULT_BURST,
    DEFAULT_REQUESTS_PER_SECOND,
    METER_HEADROOM,
    FairTurns,
    RateLimitHeaders,
    retry_after_seconds,
)

log = structlog.get_logger(__name__)

DEFAULT_BUCKET = "tidal-api"
# Float arithmetic may leave a bucket at 0.9999999 tokens when it should hold one.
_TOKEN_EPSILON = 1e-9
# While the database cannot be reached, how long to wait before trying again (doubling).
_UNREACHABLE_FIRST_WAIT = 0.2
_UNREACHABLE_LONGEST_WAIT = 5.0

# Built once: the pace runs on every TIDAL request, and building these per call cost more CPU than
# running them (bench/).
_LOCK_ROW = select(tidal_pace).where(tidal_pace.c.bucket == bindparam("bucket")).with_for_update()
_CLOCK = select(func.clock_timestamp())
_WRITE_ROW = (
    tidal_pace.update()
    .where(tidal_pace.c.bucket == bindparam("row_bucket"))
    .values(
        tokens=bindparam("new_tokens"),
        capacity=bindparam("new_capacity"),
        refill_per_second=bindparam("new_rate"),
        updated_at=bindparam("new_updated_at"),
        blocked_until=bindparam("new_blocked_until"),
    )
)


@dataclass(slots=True)
class _Observation:
    """What TIDAL's latest headers said, not yet written to the shared row. Times are this
    process's monotonic clock: they become database times only when applied, as durations from
    the database's now."""

    observed_at: float
    requests_per_second: float | None = None
    burst: float | None = None
    requests_remaining: float | None = None
    blocked_until: float | None = None  # monotonic

    def merge(self, later: _Observation) -> _Observation:
        return _Observation(
            observed_at=later.observed_at,
            requests_per_second=_latest(self.requests_per_second, later.requests_per_second),
            burst=_latest(self.burst, later.burst),
            requests_remaining=(
                later.requests_remaining
                if later.requests_remaining is not None
                else self.requests_remaining
            ),
            blocked_until=_max_or_none(self.blocked_until, later.blocked_until),
        )


class PostgresPace:
    """The `Pace` Protocol (adapters.tidal.pace) shared by every process through PostgreSQL.

    `acquire()` takes one token from the `tidal_pace` row named `bucket`, refilled by the time
    elapsed on the database's clock; when none is available (or a 429's Retry-After holds every
    process back) it commits, sleeps the computed wait outside any transaction, and tries again.
    Within one process, one task polls the database and hands each slot to the waiting caller
    `domain.fair_share.next_turn` names (ADR 0028).

    `observe(headers)` only records TIDAL's headers in memory, and then writes them to the row
    from a background task (and in any case with the next `acquire()`): `x-ratelimit-*` become
    the shared bucket's rate and capacity and cap its tokens; `retry-after` blocks every process
    until it has passed.

    The configured rate and burst are written to the row by each instance's first `acquire()`, so
    a changed configuration takes effect on restart; TIDAL's headers override them afterwards.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND,
        burst: float = DEFAULT_BURST,
        bucket: str = DEFAULT_BUCKET,
    ) -> None:
        if requests_per_second <= 0 or burst < 1:
            raise ValueError("the pace needs a positive rate and a burst of at least one")
        self._engine = engine
        self._rate = float(requests_per_second)
        self._burst = float(burst)
        self._bucket = bucket
        self._configured = False
        self._pending: _Observation | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._unreachable_wait = _UNREACHABLE_FIRST_WAIT
        self._turns = FairTurns(self._take_or_wait_for_the_database)

    async def acquire(self, *, opens_item: bool = True) -> None:
        await self._turns.take(opens_item=opens_item)

    async def _take_or_wait_for_the_database(self) -> float:
        try:
            wait = await self._take_or_wait()
        except Exception:
            # The Pace contract raises nothing but cancellation. Without the shared row no
            # process may call TIDAL, so wait for the database rather than guess.
            log.warning("tidal_pace.database_unavailable", exc_info=True)
            wait, self._unreachable_wait = (
                self._unreachable_wait,
                min(self._unreachable_wait * 2, _UNREACHABLE_LONGEST_WAIT),
            )
            return wait
        self._unreachable_wait = _UNREACHABLE_FIRST_WAIT
        return wait

    def observe(self, headers: Mapping[str, str]) -> None:
        try:
            observation = _observation_from(headers, time.monotonic())
        except Exception:  # never raise into the HTTP client's response handling
            log.warning("tidal_pace.unreadable_headers", exc_info=True)
            return
        if observation is None:
            return
        self._pending = observation if self._pending is None else self._pending.merge(observation)
        self._schedule_flush()

    async def flush(self) -> None:
        """Write what `observe` recorded to the shared row now (it is also done in the
        background); other processes see it from their next `acquire()` on."""
        observation = self._pending
        if observation is None:
            return
        async with disposable_transaction(self._engine) as connection:
            await self._apply(connection, observation, take_token=False)
        self._settle(observation)

    async def aclose(self) -> None:
        """Stop the background write, if one is running (pending observations are dropped),
        and the task that takes turns."""
        await self._turns.aclose()
        task, self._flush_task = self._flush_task, None
        if task is not None and not task.done():
            task.cancel()
            # wait() does not raise the task's cancellation, so our own is never swallowed.
            await asyncio.wait([task])

    # -- the bucket ---------------------------------------------------------------------------

    async def _take_or_wait(self) -> float:
        """One short transaction: take a token and answer 0, or answer how long to wait."""
        observation = self._pending
        async with disposable_transaction(self._engine) as connection:
            wait = await self._apply(connection, observation, take_token=True)
        self._settle(observation)
        self._configured = True
        return wait

    def _settle(self, applied: _Observation | None) -> None:
        """Forget an observation once its transaction has committed. One merged into it while
        the transaction ran is kept whole: applying it again is harmless (the same rate and
        capacity, a block that is no later, a cap on tokens that has refilled since)."""
        if applied is not None and self._pending is applied:
            self._pending = None

    async def _apply(
        self, connection: AsyncConnection, observation: _Observation | None, *, take_token: bool
    ) -> float:
        """Refill, apply TIDAL's word, then take a token (or only write, when `take_token` is
        false). Answers how long to wait before asking again; 0 when a token was taken."""
        row = await self._lock_row(connection)
        # Read after the row lock is held: a time read while waiting for it would be stale.
        now: datetime = (await connection.execute(_CLOCK)).scalar_one()
        # Never move the bucket's time backwards (it only moves forward when now is later).
        now = max(now, row["updated_at"])
        rate: float = row["refill_per_second"]
        capacity: float = row["capacity"]
        if not self._configured and take_token:
            rate, capacity = self._rate, self._burst
        tokens = min(capacity, row["tokens"] + (now - row["updated_at"]).total_seconds() * rate)
        blocked_until: datetime | None = row["blocked_until"]

        if observation is not None:
            rate, capacity, tokens, blocked_until = _applied(
                observation, time.monotonic(), now, rate, capacity, tokens, blocked_until
            )

        wait = 0.0
        if blocked_until is not None and blocked_until > now:
            wait = (blocked_until - now).total_seconds()
        elif not take_token:
            pass
        elif tokens >= 1 - _TOKEN_EPSILON:
            tokens = max(0.0, tokens - 1)
        else:
            wait = (1 - tokens) / rate

        await connection.execute(
            _WRITE_ROW,
            {
                "row_bucket": self._bucket,
                "new_tokens": tokens,
                "new_capacity": capacity,
                "new_rate": rate,
                "new_updated_at": now,
                "new_blocked_until": (
                    blocked_until if blocked_until and blocked_until > now else None
                ),
            },
        )
        return wait

    async def _lock_row(self, connection: AsyncConnection) -> RowMapping:
        key = {"bucket": self._bucket}
        row = (await connection.execute(_LOCK_ROW, key)).mappings().first()
        if row is not None:
            return row
        # The first process to ask makes the bucket, full. Two doing so at once: one inserts,
        # the other's insert does nothing, and both lock the same row.
        await connection.execute(
            insert(tidal_pace)
            .values(
                bucket=self._bucket,
                tokens=self._burst,
                capacity=self._burst,
                refill_per_second=self._rate,
                updated_at=func.clock_timestamp(),
                blocked_until=None,
            )
            .on_conflict_do_nothing(index_elements=[tidal_pace.c.bucket])
        )
        return (await connection.execute(_LOCK_ROW, key)).mappings().one()

    # -- observations -------------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if self._flush_task is not None and not self._flush_task.done():
            return  # the running flush takes whatever is pending when it starts, or acquire will
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a synchronous caller): the next acquire applies it
        self._flush_task = loop.create_task(self._flush_in_background())

    async def _flush_in_background(self) -> None:
        try:
            await self.flush()
        except Exception:
            # Kept for the next acquire, which applies whatever is pending.
            log.warning("tidal_pace.flush_failed", exc_info=True)


def _observation_from(headers: Mapping[str, str], at: float) -> _Observation | None:
    # Header names are case-insensitive; an httpx.Headers answers either way, a dict may not.
    lowered = {name.lower(): value for name, value in headers.items()}
    server = RateLimitHeaders.parse(lowered)
    retry_after = retry_after_seconds(lowered.get("retry-after"))
    if server is None and retry_after is None:
        return None
    observation = _Observation(observed_at=at)
    if server is not None:
        observation.requests_per_second = server.requests_per_second
        observation.burst = server.request_burst
        observation.requests_remaining = server.requests_remaining
    if retry_after is not None:
        observation.blocked_until = at + retry_after
    return observation


def _applied(
    observation: _Observation,
    monotonic_now: float,
    now: datetime,
    rate: float,
    capacity: float,
    tokens: float,
    blocked_until: datetime | None,
) -> tuple[float, float, float, datetime | None]:
    """The bucket after TIDAL's word: its rate and capacity win, its remaining requests cap the
    tokens (plus what has refilled since it said so), and a Retry-After extends the block."""
    if observation.requests_per_second is not None and observation.requests_per_second > 0:
        rate = observation.requests_per_second * METER_HEADROOM
    if observation.burst is not None:
        capacity = max(1.0, observation.burst)
    tokens = min(tokens, capacity)
    since = max(0.0, monotonic_now - observation.observed_at)
    if observation.requests_remaining is not None:
        tokens = min(tokens, max(0.0, observation.requests_remaining) + since * rate)
    if observation.blocked_until is not None:
        left = observation.blocked_until - monotonic_now
        if left > 0 and math.isfinite(left):
            until = now + timedelta(seconds=left)
            blocked_until = until if blocked_until is None else max(blocked_until, until)
    return rate, capacity, tokens, blocked_until


def _latest(earlier: float | None, later: float | None) -> float | None:
    return later if later is not None else earlier


def _max_or_none(first: float | None, second: float | None) -> float | None:
    if first is None:
        return second
    if second is None:
        return first
    return max(first, second)
