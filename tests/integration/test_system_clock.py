"""The machine's clock passes the Clock port's contract."""

from __future__ import annotations

import pytest

from adapters.clock import SystemClock
from tests.contracts.clock import ClockContract


class TestSystemClockContract(ClockContract):
    @pytest.fixture
    def clock(self) -> SystemClock:
        return SystemClock()
