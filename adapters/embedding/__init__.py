"""Embedders: the implementations of application.ports.embedder.Embedder."""

from adapters.embedding.hashing import FieldWeights, HashingEmbedder

__all__ = ["FieldWeights", "HashingEmbedder"]
