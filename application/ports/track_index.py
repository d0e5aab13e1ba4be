"""The search index (Qdrant): which ISRCs it holds, writing a track, searching."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from application.errors import DependencyUnavailable
from domain.values import CatalogId, Isrc


class IndexUnavailable(DependencyUnavailable):
    """The index did not answer in time or answered with an error. Callers that only ask what
    is indexed fail open (treat everything as not indexed)."""


@dataclass(frozen=True, slots=True)
class IndexedTrack:
    """The payload of one point: design.md §4."""

    isrc: Isrc
    track_id: CatalogId
    title: str
    artist_names: tuple[str, ...]
    album_id: CatalogId | None
    indexed_at: datetime


@dataclass(frozen=True, slots=True)
class TrackHit:
    isrc: Isrc
    track_id: CatalogId
    title: str
    artist_names: tuple[str, ...]
    score: float


class TrackIndex(Protocol):
    """Points keyed by Isrc.point_id. Raises IndexUnavailable on any failure or timeout."""

    async def indexed(self, isrcs: Sequence[Isrc]) -> set[Isrc]:
        """Which of `isrcs` the index holds. Read-only, idempotent, bounded by a short deadline."""
        ...

    async def upsert(self, track: IndexedTrack, vector: Sequence[float]) -> None:
        """Write (or overwrite) the track's point. Idempotent: one point per ISRC."""
        ...

    async def search(self, vector: Sequence[float], limit: int) -> list[TrackHit]:
        """The nearest tracks to `vector`, best first."""
        ...
