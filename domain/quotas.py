"""How much one user may ask of the service: a token bucket on adds (ADR 0022).

Pure rules with the time passed in, as seconds on a clock that never goes back (a monotonic
clock): the bucket never reads a clock itself, so its properties can be checked at any time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RatePolicy:
    """`per_second` tokens come back every second, up to `burst` kept at most: a user may make
    `burst` requests at once after a pause, then `per_second` a second for as long as they like."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if not self.per_second > 0:
            raise ValueError(f"a rate must be positive, not {self.per_second!r}")
        if self.burst < 1:
            raise ValueError(f"a burst must be at least 1, not {self.burst!r}")

    @property
    def seconds_to_fill(self) -> float:
        """How long an emptied bucket takes to be full again: a bucket untouched for this long
        is the same as a new one, so forgetting it loses nothing."""
        return self.burst / self.per_second


@dataclass(frozen=True, slots=True)
class TokenBucket:
    """The tokens a user has left, as counted at `counted_at` (seconds, monotonic)."""

    tokens: float
    counted_at: float

    @classmethod
    def full(cls, policy: RatePolicy, *, at: float) -> TokenBucket:
        return cls(tokens=float(policy.burst), counted_at=at)

    def take(self, policy: RatePolicy, *, at: float) -> tuple[TokenBucket, float]:
        """Takes one token at `at`. Answers the bucket afterwards and 0.0 when a token was
        taken, or the unchanged bucket (refilled to `at`) and the seconds until a token will be
        there when none was. A time before `counted_at` (a clock read late by a concurrent
        caller) refills nothing: tokens are never created by going back in time."""
        elapsed = max(0.0, at - self.counted_at)
        tokens = min(float(policy.burst), self.tokens + elapsed * policy.per_second)
        now = max(at, self.counted_at)
        if tokens >= 1.0:
            return TokenBucket(tokens=tokens - 1.0, counted_at=now), 0.0
        return TokenBucket(tokens=tokens, counted_at=now), (1.0 - tokens) / policy.per_second
