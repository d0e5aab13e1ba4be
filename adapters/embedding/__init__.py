"""Embedders and the lexical encoder: the implementations of application.ports.embedder."""

from adapters.embedding.hashing import FieldWeights, HashingEmbedder
from adapters.embedding.lexical import LexicalFeatureEncoder
from adapters.embedding.wordllama import WordLlamaEmbedder

__all__ = ["FieldWeights", "HashingEmbedder", "LexicalFeatureEncoder", "WordLlamaEmbedder"]
