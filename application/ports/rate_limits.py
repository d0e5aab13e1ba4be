"""Per-user admission of adds: the token bucket of ADR 0022, kept wherever the adapter keeps it."""

from __future__ import annotations

from typing import Protocol

from domain.values import UserId


class AddRateLimits(Protocol):
    """Decides whether `user_id` may add now, under the RatePolicy the adapter was built with.

    Synchronous and without I/O on purpose: it sits on the add's hot path, whose one statement
    is the only round trip allowed (ADR 0016, ADR 0022). Not transactional: a token taken for an
    add that then fails is not given back. Never raises."""

    def take(self, user_id: UserId) -> float:
        """Takes one of the user's tokens. Answers 0.0 when one was taken (the add may go on),
        else the seconds until one will be there (nothing was taken)."""
        ...
