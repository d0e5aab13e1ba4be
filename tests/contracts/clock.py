"""The Clock port's contract: the current time, always timezone-aware UTC, never going back."""

from __future__ import annotations

from datetime import timedelta

from application.ports.clock import Clock


class ClockContract:
    """Subclass as `Test<Adapter>ClockContract` with a fixture `clock` giving the adapter."""

    def test_the_time_is_timezone_aware_utc(self, clock: Clock) -> None:
        now = clock.now()

        assert now.utcoffset() == timedelta(0)

    def test_the_time_never_goes_back(self, clock: Clock) -> None:
        readings = [clock.now() for _ in range(100)]

        assert readings == sorted(readings)
