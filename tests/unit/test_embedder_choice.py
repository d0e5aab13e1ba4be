"""The composition root's choice of embedder (ADR 0030): the bundled model unless EMBEDDER says
hashing, with the configured dimension, and a bad choice refused at start."""

from __future__ import annotations

import pydantic
import pytest

from adapters.embedding import HashingEmbedder, WordLlamaEmbedder
from entrypoints.container import embedder
from entrypoints.settings import Settings


def test_the_model_is_the_default() -> None:
    chosen = embedder(Settings())
    assert isinstance(chosen, WordLlamaEmbedder)
    assert (chosen.dimension, chosen.space) == (256, "wordllama-l2_supercat-256")


def test_embedder_hashing_is_the_fallback_with_the_configured_dimension() -> None:
    chosen = embedder(Settings(embedder="hashing", embedding_dimension=64))
    assert isinstance(chosen, HashingEmbedder)
    assert (chosen.dimension, chosen.space) == (64, "hashing-v1-64")


def test_an_unknown_embedder_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="wordllama"):
        Settings(embedder="word2vec")
