"""Turns track metadata and search queries into vectors of one fixed dimension."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class TrackText:
    title: str
    version: str | None
    artist_names: tuple[str, ...]
    album_title: str | None


class Embedder(Protocol):
    """Deterministic for a given configuration; pure CPU work, no I/O. Vectors are
    L2-normalised, so cosine similarity and dot product agree."""

    dimension: int

    def embed_track(self, track: TrackText) -> list[float]: ...

    def embed_query(self, query: str) -> list[float]: ...
