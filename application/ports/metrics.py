"""Operational counters the use cases (and the catalogue adapter) report; the metrics adapter
exports them (Prometheus, ADR 0032 names them)."""

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


class IngestionMetrics(Protocol):
    """What the worker reports of each track (fire-and-forget: never blocks, never raises).
    `step` is one of the worker's steps: fetch, embed, upsert, mark."""

    def track_embedded(self) -> None: ...

    def track_indexed(self) -> None: ...

    def track_failed(self) -> None: ...

    def step_took(self, step: str, seconds: float) -> None: ...


class CatalogPaceMetrics(Protocol):
    """What the catalogue adapter reports of its calls to TIDAL against the shared pace
    (fire-and-forget: never blocks, never raises)."""

    def pace_slot_taken(self, *, waited_seconds: float) -> None: ...

    def catalog_rate_limited(self) -> None: ...


class NoMetrics:
    """For tests and tools that do not export metrics."""

    def track_embedded(self) -> None:
        return None

    def track_indexed(self) -> None:
        return None

    def track_failed(self) -> None:
        return None

    def step_took(self, step: str, seconds: float) -> None:
        return None

    def pace_slot_taken(self, *, waited_seconds: float) -> None:
        return None

    def catalog_rate_limited(self) -> None:
        return None

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
