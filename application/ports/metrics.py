"""Operational counters the use cases report; the adapter exports them (Prometheus)."""

from __future__ import annotations

from typing import Protocol


class SchedulingMetrics(Protocol):
    """Fire-and-forget: never blocks, never raises."""

    def job_claimed(self) -> None: ...

    def job_finished(self, *, seconds_since_enqueued: float) -> None: ...

    def job_failed(self, *, permanent: bool) -> None: ...

    def index_failed_open(self) -> None: ...

    def events_dispatched(self, count: int) -> None: ...

    def dispatch_failed(self) -> None: ...


class NoMetrics:
    """For tests and tools that do not export metrics."""

    def job_claimed(self) -> None:
        return None

    def job_finished(self, *, seconds_since_enqueued: float) -> None:
        return None

    def job_failed(self, *, permanent: bool) -> None:
        return None

    def index_failed_open(self) -> None:
        return None

    def events_dispatched(self, count: int) -> None:
        return None

    def dispatch_failed(self) -> None:
        return None
