"""The default Embedder: a deterministic, feature-hashed text vector of a track's metadata.

No model, no network, no randomness: the same text gives the same vector in every process and on
every machine, so vectors written by one release are comparable with queries from another as long
as the configuration (and FEATURE_VERSION) is unchanged. docs/adr/0011 explains the choices.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from application.ports.embedder import TrackText

# Changing any feature or the hash changes every vector: bump it, and re-index.
FEATURE_VERSION = 1
_PERSON = b"libingest-hash01"  # blake2b personalisation (16 bytes): our own hash family

_WORD = re.compile(r"\w+")

# Relative weights of the kinds of feature. Whole words carry the meaning; character 3-grams
# forgive typos, inflections and partial words, but there are many per word, so each weighs less.
_UNIGRAM = 1.0
_BIGRAM = 0.6
_TRIGRAM = 0.25
# The whole field as one feature ('f:'): an exact title or artist name matches it, a title that
# merely contains the query's words does not. Without it, a short exact title loses to a longer
# one with fewer other features, since cosine rewards the sparser vector.
_WHOLE = 2.0
# By the prefix of the feature's key.
KIND_WEIGHTS = {"f": _WHOLE, "w": _UNIGRAM, "b": _BIGRAM, "c": _TRIGRAM}

_CACHE_LIMIT = 200_000


@dataclass(frozen=True, slots=True)
class FieldWeights:
    """How much each field of a track counts. Title and artists identify a track; the album
    title and version are context (many tracks share an album, many say 'Remastered')."""

    title: float = 1.0
    artists: float = 0.9
    version: float = 0.5
    album: float = 0.35


def normalise(text: str) -> str:
    """NFKD, accents removed, case folded: 'Beyoncé' and 'BEYONCE' become the same words."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.casefold()


def features(text: str, kind_weights: Mapping[str, float] = KIND_WEIGHTS) -> dict[str, float]:
    """The weighted, sublinear term frequencies of one text's features.

    The whole text (`f:`), word unigrams (`w:`), adjacent word bigrams (`b:`) and character
    3-grams of each word with boundary markers (`c:`, e.g. '<lo', 'lov', 'ove', 've>'); words of
    one or two characters give a single boundary gram ('<a>'). Weight = kind weight * (1 + ln tf).
    """
    words = _WORD.findall(normalise(text))
    if not words:
        return {}
    counts: dict[str, int] = {"f:" + " ".join(words): 1}
    for word in words:
        key = "w:" + word
        counts[key] = counts.get(key, 0) + 1
        marked = f"<{word}>"
        if len(marked) <= 4:
            grams: Iterable[str] = (marked,)
        else:
            grams = (marked[i : i + 3] for i in range(len(marked) - 2))
        for gram in grams:
            key = "c:" + gram
            counts[key] = counts.get(key, 0) + 1
    for left, right in itertools.pairwise(words):
        key = f"b:{left} {right}"
        counts[key] = counts.get(key, 0) + 1
    return {
        feature: kind_weights[feature[0]] * (1.0 + math.log(count))
        for feature, count in counts.items()
    }


def feature_hash(feature: str, *, person: bytes, digest_size: int) -> int:
    """A feature's blake2b digest as a number: the same in every process and release (Python's
    `hash()` is salted per process)."""
    digest = hashlib.blake2b(
        feature.encode("utf-8", "surrogatepass"), digest_size=digest_size, person=person
    ).digest()
    return int.from_bytes(digest, "big")


def track_features(
    track: TrackText, weights: FieldWeights, kind_weights: Mapping[str, float] = KIND_WEIGHTS
) -> dict[str, float]:
    """The features of a track's fields, each weighted by its field: a feature's value is the
    sum over fields of field weight * feature weight."""
    fields: list[tuple[str | None, float]] = [
        (track.title, weights.title),
        (track.version, weights.version),
        (track.album_title, weights.album),
    ]
    # Each artist name is a field of its own (so 'f:' matches one name, and no bigram spans
    # two names); their weight is shared, so that a long list does not outweigh the title.
    names = [name for name in track.artist_names if name]
    fields += [(name, weights.artists / math.sqrt(len(names))) for name in names]
    combined: dict[str, float] = {}
    for text, weight in fields:
        if not text or weight == 0:
            continue
        for feature, value in features(text, kind_weights).items():
            combined[feature] = combined.get(feature, 0.0) + weight * value
    return combined


class HashingEmbedder:
    """Implements the Embedder port by the hashing trick: each feature lands in one of
    `dimension` buckets with a sign, both taken from a blake2b digest of the feature. The
    fallback when no model is wanted (EMBEDDER=hashing, ADR 0030)."""

    # Unrelated texts share buckets by collision and common 3-grams: nonsense scores up to
    # about 0.5 against 402 tracks (tests/search_quality), so in the hybrid on this fallback
    # only a strong match counts from the dense side and the lexical side does the rest.
    match_floor = 0.5

    def __init__(self, dimension: int = 256, *, field_weights: FieldWeights | None = None) -> None:
        if dimension < 1:
            raise ValueError(f"dimension must be positive, not {dimension}")
        self.dimension = dimension
        self.space = f"hashing-v{FEATURE_VERSION}-{dimension}"
        self.field_weights = field_weights or FieldWeights()
        # feature -> (bucket, sign); hashing dominates the cost and titles repeat many words.
        self._slots: dict[str, tuple[int, float]] = {}

    def embed_track(self, track: TrackText) -> list[float]:
        return self._vector(track_features(track, self.field_weights))

    def embed_query(self, query: str) -> list[float]:
        """The same features as a track, without field weights: a query has no fields."""
        return self._vector(features(query))

    def _vector(self, weighted: dict[str, float]) -> list[float]:
        """Hash into buckets and L2-normalise. No feature at all gives the zero vector (see the
        ADR): it is similar to nothing, rather than arbitrarily similar to something."""
        vector = [0.0] * self.dimension
        for feature, weight in weighted.items():
            bucket, sign = self._slot(feature)
            vector[bucket] += sign * weight
        norm = math.sqrt(math.fsum(value * value for value in vector))
        if norm == 0.0:
            return vector
        return [value / norm for value in vector]

    def _slot(self, feature: str) -> tuple[int, float]:
        slot = self._slots.get(feature)
        if slot is None:
            number = feature_hash(feature, person=_PERSON, digest_size=8)
            # The low bit gives the sign, the rest the bucket: independent bits of one digest.
            slot = ((number >> 1) % self.dimension, -1.0 if number & 1 else 1.0)
            if len(self._slots) >= _CACHE_LIMIT:
                self._slots.clear()
            self._slots[feature] = slot
        return slot
