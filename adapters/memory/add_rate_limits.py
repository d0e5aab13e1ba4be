"""The add's token buckets in this process's memory (ADR 0022): no I/O on the add's path, and a
bounded number of buckets, so neither time nor a crowd of users makes it grow without end."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from domain.quotas import RatePolicy, TokenBucket
from domain.values import UserId


class InProcessAddRateLimits:
    """The AddRateLimits port, one bucket per user in an LRU map of at most `max_users`.

    Forgetting the least recently used bucket when the map is full is safe: one untouched for
    `policy.seconds_to_fill` is full again, exactly what a forgotten user gets. Only past
    `max_users` users active within that many seconds does a forgotten bucket start full early,
    and then the limit errs towards letting adds through. Each process keeps its own buckets:
    N API processes let a user add N times the rate (ADR 0022 says why that is accepted)."""

    def __init__(
        self,
        policy: RatePolicy,
        *,
        max_users: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_users < 1:
            raise ValueError(f"max_users must be at least 1, not {max_users!r}")
        self._policy = policy
        self._max_users = max_users
        self._clock = clock
        self._buckets: OrderedDict[UserId, TokenBucket] = OrderedDict()

    def take(self, user_id: UserId) -> float:
        at = self._clock()
        bucket = self._buckets.get(user_id)
        if bucket is None:
            bucket = TokenBucket.full(self._policy, at=at)
            if len(self._buckets) >= self._max_users:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(user_id)
        self._buckets[user_id], retry_after = bucket.take(self._policy, at=at)
        return retry_after

    def __len__(self) -> int:
        return len(self._buckets)
