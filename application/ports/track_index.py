"""The search index (Qdrant): which ISRCs it holds, writing a track, searching."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from application.errors import DependencyUnavailable
from application.ports.embedder import SparseVector
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


@dataclass(frozen=True, slots=True)
class TrackVectors:
    """What the index keeps of a track to find it: the Embedder's dense vector and the
    LexicalEncoder's sparse one."""

    dense: tuple[float, ...]
    lexical: SparseVector


@dataclass(frozen=True, slots=True)
class TrackQuery:
    """A search: the dense vector, and the lexical one for a hybrid search (None: dense only).
    A track counts for a ranking only when its score there is above that ranking's floor."""

    dense: tuple[float, ...]
    lexical: SparseVector | None = None
    dense_floor: float | None = None
    lexical_floor: float | None = None


class TrackIndex(Protocol):
    """Points keyed by Isrc.point_id. Raises IndexUnavailable on any failure or timeout."""

    async def indexed(self, isrcs: Sequence[Isrc]) -> set[Isrc]:
        """Which of `isrcs` the index holds. Read-only, idempotent, bounded by a short deadline."""
        ...

    async def upsert(self, track: IndexedTrack, vectors: TrackVectors) -> None:
        """Write (or overwrite) the track's point. Idempotent: one point per ISRC. A dense vector
        of the wrong dimension is the caller's bug: ValueError, not IndexUnavailable."""
        ...

    async def search(self, query: TrackQuery, limit: int) -> list[TrackHit]:
        """At most `limit` tracks that match `query`, best first. Dense only: by cosine
        similarity. Hybrid: the dense and the lexical rankings fused by rank, so a track first
        in both comes first. A track below both floors is not an answer, so a query that
        matches nothing answers []. Scores order one answer; they mean nothing across answers.
        Read-only."""
        ...

    async def prepare(self, vectorise: Callable[[IndexedTrack], TrackVectors]) -> int:
        """Ready the index for this configuration's vectors, at start-up: create it when
        missing; when it holds points written with other vectors (another embedder, or an older
        schema), write each again with `vectorise(track as its payload holds it)`. Returns how
        many points were written again. Idempotent. Raises IndexUnavailable."""
        ...
