"""The LexicalEncoder: a track's words, word pairs, whole fields and character 3-grams as a
sparse vector, one index per feature.

The features and field weights are the hashing embedder's (adapters/embedding/hashing.py, ADR
0011), but no feature shares a bucket with another: each gets its own 32-bit index, so an
unrelated text shares nothing by collision. Exact titles match through the whole-field and word
features, partial titles through words and bigrams, typos through the 3-grams (ADR 0030).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from adapters.embedding.hashing import FieldWeights, feature_hash, features, track_features
from application.ports.embedder import SparseVector, TrackText

# Changing a feature, a weight or the hash changes every vector: bump it, and the index
# rewrites its points at the next start (the vector's name is its space).
LEXICAL_VERSION = 1
_PERSON = b"libingest-lex-01"  # blake2b personalisation (16 bytes)
_CACHE_LIMIT = 200_000
# The hashing embedder's kinds (ADR 0011), with the character 3-grams weighing as much as whole
# words: without buckets to share there is no collision noise to keep down, and a typo leaves
# the query only its 3-grams to match with (ADR 0030).
KIND_WEIGHTS = {"f": 2.0, "w": 1.0, "b": 0.6, "c": 1.0}


class LexicalFeatureEncoder:
    """Implements the LexicalEncoder port: each feature's index is a 32-bit blake2b digest of
    the feature, its value the feature's weight; the vector is L2-normalised."""

    # Nonsense shares a few 3-grams with some track (up to 0.12 against 402 tracks); a typo's
    # remaining 3-grams or one shared word score more (tests/search_quality, ADR 0030).
    match_floor = 0.12

    def __init__(
        self,
        *,
        field_weights: FieldWeights | None = None,
        kind_weights: Mapping[str, float] | None = None,
    ) -> None:
        self.space = f"lexical-v{LEXICAL_VERSION}"
        self.field_weights = field_weights or FieldWeights()
        self.kind_weights = dict(kind_weights or KIND_WEIGHTS)
        self._indices: dict[str, int] = {}

    def encode_track(self, track: TrackText) -> SparseVector:
        return self._sparse(track_features(track, self.field_weights, self.kind_weights))

    def encode_query(self, query: str) -> SparseVector:
        """The same features as a track, without field weights: a query has no fields."""
        return self._sparse(features(query, self.kind_weights))

    def _sparse(self, weighted: dict[str, float]) -> SparseVector:
        by_index: dict[int, float] = {}
        for feature, weight in weighted.items():
            index = self._index(feature)
            by_index[index] = by_index.get(index, 0.0) + weight
        norm = math.sqrt(math.fsum(value * value for value in by_index.values()))
        if norm == 0.0:
            return SparseVector(indices=(), values=())
        ordered = sorted(by_index.items())
        return SparseVector(
            indices=tuple(index for index, _ in ordered),
            values=tuple(value / norm for _, value in ordered),
        )

    def _index(self, feature: str) -> int:
        index = self._indices.get(feature)
        if index is None:
            index = feature_hash(feature, person=_PERSON, digest_size=4)
            if len(self._indices) >= _CACHE_LIMIT:
                self._indices.clear()
            self._indices[feature] = index
        return index
