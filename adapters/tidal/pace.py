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

DEFAULT_REQUESTS_PER_SECOND = 0.2
DEFAULT_BURST = 2


class Pace(Protocol):
    """Admission control for requests to TIDAL's API (not the token endpoint).

    - `acquire()` returns when one request may be sent, waiting as long as needed; each call
      admits exactly one request. It must be safe to call from many tasks at once, and admission
      should be first come, first served. It raises nothing but cancellation.
    - `observe(headers)` is called with the headers of every API response, 429s included, and
      never blocks or raises. Implementations may use `x-ratelimit-remaining`,
      `x-ratelimit-requested-tokens`, `x-ratelimit-burst-capacity`,
      `x-ratelimit-replenish-rate` and `retry-after` to slow down (or speed up to) what TIDAL
      grants; headers may be absent, and then the configured base rate applies.
    """

    async def acquire(self) -> None: ...

    def observe(self, headers: Mapping[str, str]) -> None: ...


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
        # One waiter at a time: the others queue on the lock in arrival order (asyncio.Lock is
        # fair), so admission is first come, first served.
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                self._refill(now)
                if now < self._hold_until:
                    await self._sleep(self._hold_until - now)
                    continue
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await self._sleep((1 - self._tokens) / self._rate)

    def observe(self, headers: Mapping[str, str]) -> None:
        now = self._clock()
        self._refill(now)
        server = RateLimitHeaders.parse(headers)
        if server is not None:
            if server.requests_per_second is not None:
                self._rate = server.requests_per_second
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


class Unpaced:
    """No pacing: for the offline sample catalogue and tests, where nobody meters the calls."""

    async def acquire(self) -> None:
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
