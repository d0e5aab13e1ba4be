"""Turns track metadata and search queries into vectors: a dense vector of one fixed dimension
(the Embedder: a model, or the hashing fallback) and a sparse lexical one (the LexicalEncoder)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class TrackText:
    title: str
    version: str | None
    artist_names: tuple[str, ...]
    album_title: str | None


@dataclass(frozen=True, slots=True)
class SparseVector:
    """Non-zero weights by feature index: indices unique, ascending, below 2**32."""

    indices: tuple[int, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.indices) != len(self.values):
            raise ValueError("a sparse vector needs one value per index")

    @property
    def is_empty(self) -> bool:
        return not self.indices


class Embedder(Protocol):
    """Deterministic for a given configuration; pure CPU work, no I/O. Vectors are
    L2-normalised, so cosine similarity and dot product agree.

    `space` names the vector space (model and dimension, or the hashing features' version):
    vectors are comparable only within one space, and the index keeps them under that name.
    `match_floor` is the cosine similarity at or below which a query and a track have nothing
    in common for this embedder (measured on tests/search_quality, ADR 0030)."""

    dimension: int
    space: str
    match_floor: float

    def embed_track(self, track: TrackText) -> list[float]: ...

    def embed_query(self, query: str) -> list[float]: ...


class LexicalEncoder(Protocol):
    """The words and character n-grams of a text as a sparse vector, so exact words, partial
    words and typos match through the features they share. Deterministic, pure CPU, no I/O,
    L2-normalised (a text with no features gives the empty vector). `space` and `match_floor`
    mean what they mean for the Embedder, for the sparse vector's dot product."""

    space: str
    match_floor: float

    def encode_track(self, track: TrackText) -> SparseVector: ...

    def encode_query(self, query: str) -> SparseVector: ...
