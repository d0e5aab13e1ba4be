"""The model Embedder: WordLlama's l2_supercat token embeddings (256 dimensions), average-pooled.

The weights (`weights/l2_supercat_256.safetensors`, 16 MB) and the tokenizer ship inside the
`wordllama` wheel, so the model loads from the installed package and never from the network: the
package folder is given as wordllama's cache, which is where it looks for the tokenizer (its
first lookup, `<package>/tokenizer/`, misses the bundled `<package>/tokenizers/`), and downloads
are disabled, so a missing file is an error rather than a request to Hugging Face (ADR 0030).
"""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path
from typing import Any

from application.ports.embedder import TrackText

CONFIG = "l2_supercat"
BUNDLED_DIMENSION = 256  # the one weight file in the wheel
# Matryoshka-trained: the first 64 or 128 of the 256 dimensions are a model of their own.
DIMENSIONS = (64, 128, 256)


class ModelUnavailable(RuntimeError):
    """The bundled model could not be loaded: a broken install, not an outage."""


@functools.cache
def load_bundled_model(dimension: int = BUNDLED_DIMENSION) -> Any:
    """WordLlama's inference object from the installed wheel, strictly offline. Loaded once per
    process and dimension (about 0.4 s and 16 MB of weights); embedding only reads it."""
    if dimension not in DIMENSIONS:
        raise ValueError(
            f"the bundled WordLlama model has {', '.join(map(str, DIMENSIONS))} dimensions,"
            f" not {dimension}; set EMBEDDING_DIMENSION to one of them or EMBEDDER=hashing"
        )
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        # wordllama.inference calls logging.basicConfig(level=INFO) on import: undo it, the
        # service configures its own logging.
        import wordllama
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    package = Path(wordllama.__file__).parent
    try:
        return wordllama.WordLlama.load(
            CONFIG,
            dim=BUNDLED_DIMENSION,
            trunc_dim=None if dimension == BUNDLED_DIMENSION else dimension,
            cache_dir=package,
            disable_download=True,
        )
    except (FileNotFoundError, OSError, ValueError) as error:
        raise ModelUnavailable(
            f"the WordLlama model bundled in {package} did not load ({error});"
            " reinstall wordllama, or set EMBEDDER=hashing"
        ) from error


class WordLlamaEmbedder:
    """Implements the Embedder port with WordLlama: a text's vector is the mean of its tokens'
    embeddings, L2-normalised. A track is embedded as its title, version and artist names; the
    album title is left out, since averaging dilutes the title with it (ADR 0030)."""

    # Unrelated texts score up to about 0.3 against a few hundred tracks; a descriptive match
    # ('songs about rain' and 'Purple Rain') scores 0.4 and more (bench/search_quality.py).
    match_floor = 0.35

    def __init__(self, dimension: int = BUNDLED_DIMENSION, *, model: Any | None = None) -> None:
        self._model = model if model is not None else load_bundled_model(dimension)
        self.dimension = dimension
        self.space = f"wordllama-{CONFIG}-{dimension}"

    def embed_track(self, track: TrackText) -> list[float]:
        return self._embed(track_text(track))

    def embed_query(self, query: str) -> list[float]:
        return self._embed(query)

    def _embed(self, text: str) -> list[float]:
        pooled = self._model.embed(text)[0]
        values = [float(value) for value in pooled]
        norm = math.sqrt(math.fsum(value * value for value in values))
        if norm == 0.0:
            return [0.0] * self.dimension  # no token at all: similar to nothing
        return [value / norm for value in values]


def track_text(track: TrackText) -> str:
    """'Title (Version) Artist, Artist': what a listener would type to find the track."""
    title = f"{track.title} ({track.version})" if track.version else track.title
    return " ".join([title, ", ".join(name for name in track.artist_names if name)]).strip()
