"""The Embedder port's contract: vectors of one fixed dimension, L2-normalised, deterministic
for a given configuration."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import strategies as st

from application.ports.embedder import Embedder, TrackText

TRACK = TrackText(
    title="Come Together",
    version="Remastered 2009",
    artist_names=("The Beatles",),
    album_title="Abbey Road",
)
QUERIES = ("come together", "The Beatles", "Beyoncé", "abbey road remastered 2009")

# Any text, for properties of embedders and encoders.
texts = st.text(max_size=80)
track_texts = st.builds(
    TrackText,
    title=texts,
    version=st.none() | texts,
    artist_names=st.lists(st.text(max_size=30), max_size=4).map(tuple),
    album_title=st.none() | texts,
)


def _norm(vector: list[float]) -> float:
    return math.sqrt(sum(value * value for value in vector))


class EmbedderContract:
    """Subclass as `Test<Adapter>EmbedderContract` with a fixture `make_embedder`: a callable
    that builds a new instance of the adapter, always with the same configuration."""

    @pytest.fixture
    def embedder(self, make_embedder: Callable[[], Embedder]) -> Embedder:
        return make_embedder()

    def test_the_dimension_is_a_positive_whole_number(self, embedder: Embedder) -> None:
        assert isinstance(embedder.dimension, int)
        assert embedder.dimension >= 1

    def test_the_space_is_named_and_the_floor_is_a_cosine(self, embedder: Embedder) -> None:
        assert isinstance(embedder.space, str)
        assert embedder.space.strip() == embedder.space != ""
        assert 0.0 <= embedder.match_floor < 1.0

    def test_a_track_becomes_a_unit_vector_of_the_dimension(self, embedder: Embedder) -> None:
        vector = embedder.embed_track(TRACK)

        assert len(vector) == embedder.dimension
        assert all(isinstance(value, float) for value in vector)
        assert _norm(vector) == pytest.approx(1.0)

    @pytest.mark.parametrize("query", QUERIES)
    def test_a_query_becomes_a_unit_vector_of_the_dimension(
        self, embedder: Embedder, query: str
    ) -> None:
        vector = embedder.embed_query(query)

        assert len(vector) == embedder.dimension
        assert _norm(vector) == pytest.approx(1.0)

    def test_the_same_input_gives_the_same_vector_in_another_instance(
        self, make_embedder: Callable[[], Embedder]
    ) -> None:
        first, second = make_embedder(), make_embedder()

        assert first.embed_track(TRACK) == second.embed_track(TRACK)
        assert first.embed_query(QUERIES[0]) == second.embed_query(QUERIES[0])
        assert first.embed_query(QUERIES[0]) == first.embed_query(QUERIES[0])
