"""The lexical encoder: sparse unit vectors of a text's features, one index per feature, so a
typo keeps most of its 3-grams and nonsense shares next to nothing with a title."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings

from adapters.embedding import LexicalFeatureEncoder
from application.ports.embedder import SparseVector, TrackText
from tests.contracts.embedder import texts, track_texts

properties = settings(max_examples=100, deadline=None)


def dot(a: SparseVector, b: SparseVector) -> float:
    weights = dict(zip(a.indices, a.values, strict=True))
    return sum(weights.get(i, 0.0) * v for i, v in zip(b.indices, b.values, strict=True))


def _assert_well_formed(vector: SparseVector) -> None:
    assert list(vector.indices) == sorted(set(vector.indices))
    assert all(0 <= index < 2**32 for index in vector.indices)
    if vector.is_empty:
        assert vector.values == ()
    else:
        assert math.sqrt(sum(v * v for v in vector.values)) == pytest.approx(1.0)
        assert all(v > 0 for v in vector.values)


@properties
@given(track_texts, texts)
def test_every_vector_is_sorted_unique_and_unit_or_empty(track: TrackText, query: str) -> None:
    encoder = LexicalFeatureEncoder()
    _assert_well_formed(encoder.encode_track(track))
    _assert_well_formed(encoder.encode_query(query))


@properties
@given(track_texts, texts)
def test_the_same_input_gives_the_same_vector_in_another_instance(
    track: TrackText, query: str
) -> None:
    first, second = LexicalFeatureEncoder(), LexicalFeatureEncoder()
    assert first.encode_track(track) == second.encode_track(track)
    assert first.encode_query(query) == first.encode_query(query) == second.encode_query(query)


def test_a_text_without_words_is_the_empty_vector() -> None:
    assert LexicalFeatureEncoder().encode_query(" ?!. -- ").is_empty


def test_a_vector_is_pinned_across_processes_and_releases() -> None:
    # blake2b with our personalisation, never Python's salted hash(): a change here silently
    # breaks every stored lexical vector, so bump LEXICAL_VERSION with it.
    third, two_thirds = 1 / 3, 2 / 3
    assert LexicalFeatureEncoder().encode_query("Love") == SparseVector(
        indices=(1398205635, 1770594635, 2108601483, 2253224357, 2758250505, 4195815641),
        values=(third, third, third, third, third, two_thirds),
    )


BOHEMIAN = TrackText("Bohemian Rhapsody", "Remastered 2011", ("Queen",), "A Night at the Opera")


@pytest.mark.parametrize("query", ["Bohemian Rhapsody", "bohemian", "bohemain rapsody", "queen"])
def test_a_title_a_part_of_it_a_typo_of_it_and_the_artist_clear_the_floor(query: str) -> None:
    encoder = LexicalFeatureEncoder()
    assert dot(encoder.encode_query(query), encoder.encode_track(BOHEMIAN)) > encoder.match_floor


@pytest.mark.parametrize("query", ["xqzv blorp", "asdfghjkl", "zzzz kkkk", "mxyzptlk"])
def test_nonsense_stays_below_the_floor(query: str) -> None:
    encoder = LexicalFeatureEncoder()
    assert dot(encoder.encode_query(query), encoder.encode_track(BOHEMIAN)) <= encoder.match_floor
