"""How fast the adapter may call TIDAL.

TIDAL meters clients with a token bucket and says so in `x-ratelimit-*` headers (observed:
`requested-tokens: 5, burst-capacity: 10, replenish-rate: 1`, so about one request per 5 s with a
burst of two; shared/reference/tidal-api.md §4.3). The client calls `Pace.acquire()` before every
API request and hands every response's headers to `Pace.observe()`. The in-process token bucket
here paces one process; a PostgreSQL-backed pace shared by every process implements the same
Protocol.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import structlog

from application.ports.catalog import READING_FOR
from application.ports.metrics import CatalogPaceMetrics
from domain.fair_share import TurnRequest, after_turn, next_turn
from domain.values import UserId

log = structlog.get_logger(__name__)

DEFAULT_REQUESTS_PER_SECOND = 0.2
DEFAULT_BURST = 2
# The share of the rate TIDAL's headers state that the pace uses. At exactly the stated rate,
# any jitter between our clock and TIDAL's (a request that arrives a few ms early) is a 429;
# 3% below it, TIDAL's bucket keeps a growing reserve that absorbs the jitter (ADR 0028).
METER_HEADROOM = 0.97


class Pace(Protocol):
    """Admission control for requests to TIDAL's API (not the token endpoint).

    - `acquire(opens_item=)` returns when one request may be sent, waiting as long as needed;
      each call admits exactly one request. It must be safe to call from many tasks at once.
      Admission follows `domain.fair_share.next_turn` (ADR 0028): a request that opens an item
      (its first) before the later pages of items under way, the requester
      (`application.ports.catalog.READING_FOR`) served least recently first, one requester's
      requests in their order. It raises nothing but cancellation.
    - `observe(headers)` is called with the headers of every API response, 429s included, and
      never blocks or raises. Implementations may use `x-ratelimit-remaining`,
      `x-ratelimit-requested-tokens`, `x-ratelimit-burst-capacity`,
      `x-ratelimit-replenish-rate` and `retry-after` to slow down (or speed up to) what TIDAL
      grants; headers may be absent, and then the configured base rate applies.
    """

    async def acquire(self, *, opens_item: bool = True) -> None: ...

    def observe(self, headers: Mapping[str, str]) -> None: ...


class FairTurns:
    """The slots of a meter, handed to waiting requests in the order of
    `domain.fair_share.next_turn`. One task (started while anyone waits) takes the slots with
    `take_or_wait` (0: a slot was taken; otherwise seconds to wait before asking again) and
    chooses who gets each only once it holds it, so a request that arrives while the slot is
    awaited still competes for it."""

    def __init__(
        self,
        take_or_wait: Callable[[], Awaitable[float]],
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._take_or_wait = take_or_wait
        self._sleep = sleep
        self._waiting: list[TurnRequest[UserId]] = []
        self._granted: dict[int, asyncio.Future[None]] = {}
        self._last_served: dict[UserId | None, int] = {}
        self._sequence = 0
        self._slot = 0
        self._taker: asyncio.Task[None] | None = None

    async def take(self, *, opens_item: bool) -> None:
        request = TurnRequest(READING_FOR.get(), opens_item, self._sequence)
        self._sequence += 1
        granted = asyncio.get_running_loop().create_future()
        self._waiting.append(request)
        self._granted[request.sequence] = granted
        if self._taker is None or self._taker.done():
            self._taker = asyncio.create_task(self._take_slots(), name="pace-turns")
        try:
            await granted
        finally:
            # Cancelled while waiting: out of the queue (a slot already taken for it is lost).
            if self._granted.pop(request.sequence, None) is not None:
                self._waiting = [r for r in self._waiting if r.sequence != request.sequence]

    async def aclose(self) -> None:
        taker, self._taker = self._taker, None
        if taker is not None and not taker.done():
            taker.cancel()
            await asyncio.wait([taker])

    async def _take_slots(self) -> None:
        while self._waiting:
            try:
                wait = await self._take_or_wait()
            except Exception:  # the taker must outlive a failure, or every waiter would hang
                log.warning("pace.take_failed", exc_info=True)
                wait = 0.2
            if wait > 0:
                await self._sleep(wait)
                continue
            if not self._waiting:
                return  # everyone left while the slot was taken: it goes unused
            chosen = next_turn(self._waiting, last_served=self._last_served)
            self._waiting = after_turn(self._waiting, chosen)
            self._last_served[chosen.requester] = self._slot
            self._slot += 1
            granted = self._granted.pop(chosen.sequence)
            if not granted.done():
                granted.set_result(None)


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    """TIDAL's Spring-Cloud-Gateway style bucket, in its own tokens (a request costs several)."""

    remaining: float
    requested_tokens: float
    burst_capacity: float | None
    replenish_rate: float | None

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> RateLimitHeaders | None:
        remaining = _number(headers.get("x-ratelimit-remaining"))
        requested = _number(headers.get("x-ratelimit-requested-tokens"))
        if remaining is None or requested is None or requested <= 0:
            return None
        return cls(
            remaining=remaining,
            requested_tokens=requested,
            burst_capacity=_number(headers.get("x-ratelimit-burst-capacity")),
            replenish_rate=_number(headers.get("x-ratelimit-replenish-rate")),
        )

    @property
    def requests_remaining(self) -> float:
        return self.remaining / self.requested_tokens

    @property
    def requests_per_second(self) -> float | None:
        if self.replenish_rate is None or self.replenish_rate <= 0:
            return None
        return self.replenish_rate / self.requested_tokens

    @property
    def request_burst(self) -> float | None:
        if self.burst_capacity is None or self.burst_capacity <= 0:
            return None
        return self.burst_capacity / self.requested_tokens


def retry_after_seconds(raw: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds to wait: delta-seconds or an HTTP date; None if absent or
    unreadable. A date in the past means "now" (0)."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class TokenBucketPace:
    """One process's pace: a bucket of `burst` requests refilled at `requests_per_second`.

    When TIDAL's headers are present they win: the bucket takes the server's rate and capacity
    (converted from its tokens to requests) and never holds more than the server says remains. A
    `retry-after` header holds every caller back until it has passed, not only the one that got
    the 429.
    """

    def __init__(
        self,
        requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND,
        burst: float = DEFAULT_BURST,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if requests_per_second <= 0 or burst < 1:
            raise ValueError("the pace needs a positive rate and a burst of at least one")
        self._rate = requests_per_second
        self._capacity = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._updated_at = clock()
        self._hold_until = 0.0
        self._turns = FairTurns(self._take_or_wait, sleep=sleep)

    async def acquire(self, *, opens_item: bool = True) -> None:
        await self._turns.take(opens_item=opens_item)

    async def _take_or_wait(self) -> float:
        now = self._clock()
        self._refill(now)
        if now < self._hold_until:
            return self._hold_until - now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self._rate

    def observe(self, headers: Mapping[str, str]) -> None:
        now = self._clock()
        self._refill(now)
        server = RateLimitHeaders.parse(headers)
        if server is not None:
            if server.requests_per_second is not None:
                self._rate = server.requests_per_second * METER_HEADROOM
            if server.request_burst is not None:
                self._capacity = max(1.0, server.request_burst)
            self._tokens = min(self._tokens, server.requests_remaining, self._capacity)
        wait = retry_after_seconds(headers.get("retry-after"))
        if wait is not None:
            self._hold_until = max(self._hold_until, now + wait)

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._updated_at)
        self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
        self._updated_at = now


class MeteredPace:
    """A Pace that reports each admission and how long it waited for it (CatalogPaceMetrics):
    the turns TIDAL's calls took and the time they queued for them."""

    def __init__(self, inner: Pace, metrics: CatalogPaceMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def acquire(self, *, opens_item: bool = True) -> None:
        started = time.monotonic()
        await self._inner.acquire(opens_item=opens_item)
        self._metrics.pace_slot_taken(waited_seconds=time.monotonic() - started)

    def observe(self, headers: Mapping[str, str]) -> None:
        self._inner.observe(headers)


class Unpaced:
    """No pacing: for the offline sample catalogue and tests, where nobody meters the calls."""

    async def acquire(self, *, opens_item: bool = True) -> None:
        return None

    def observe(self, headers: Mapping[str, str]) -> None:
        return None


def _number(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
