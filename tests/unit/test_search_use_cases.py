"""SearchTracks and PrepareSearchIndex on the fake index: what they ask the index for."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.embedding import HashingEmbedder, LexicalFeatureEncoder
from application.errors import InvalidSearch
from application.ports.track_index import IndexedTrack
from application.use_cases.prepare_search_index import PrepareSearchIndex
from application.use_cases.search_tracks import SearchTracks, SearchTracksCommand
from application.use_cases.vectors import stored_track_text, track_vectors
from domain.values import CatalogId, Isrc
from tests.unit.fakes import FakeIndex

AT = datetime(2026, 12, 1, tzinfo=UTC)


def indexed(n: int, title: str, artist: str) -> IndexedTrack:
    return IndexedTrack(
        isrc=Isrc(f"QZUSE{n:07d}"),
        track_id=CatalogId(str(100 + n)),
        title=title,
        artist_names=(artist,),
        album_id=None,
        indexed_at=AT,
    )


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture
def lexical() -> LexicalFeatureEncoder:
    return LexicalFeatureEncoder()


async def test_a_search_asks_for_both_rankings_each_cut_at_its_encoders_floor(
    embedder: HashingEmbedder, lexical: LexicalFeatureEncoder
) -> None:
    index = FakeIndex()
    song = indexed(1, "Bohemian Rhapsody", "Queen")
    await index.upsert(song, track_vectors(embedder, lexical, stored_track_text(song)))

    hits = await SearchTracks(embedder, lexical, index)(SearchTracksCommand("bohemain", 5))

    assert [hit.isrc for hit in hits] == [song.isrc]
    [query] = index.searches
    assert query.lexical == lexical.encode_query("bohemain")
    assert query.dense == tuple(embedder.embed_query("bohemain"))
    assert (query.dense_floor, query.lexical_floor) == (embedder.match_floor, lexical.match_floor)


async def test_a_query_of_punctuation_alone_finds_nothing_without_asking_the_index(
    embedder: HashingEmbedder, lexical: LexicalFeatureEncoder
) -> None:
    index = FakeIndex()

    assert await SearchTracks(embedder, lexical, index)(SearchTracksCommand(" ?! ", 5)) == []
    assert index.searches == []


@pytest.mark.parametrize(
    ("query", "limit"), [("", 10), ("   ", 10), ("x" * 201, 10), ("love", 0), ("love", 101)]
)
async def test_an_empty_or_oversized_query_or_a_limit_out_of_range_is_refused(
    embedder: HashingEmbedder, lexical: LexicalFeatureEncoder, query: str, limit: int
) -> None:
    index = FakeIndex()
    with pytest.raises(InvalidSearch):
        await SearchTracks(embedder, lexical, index)(SearchTracksCommand(query, limit))
    assert index.searches == []


async def test_preparing_the_index_rewrites_stale_points_from_their_payload_text(
    embedder: HashingEmbedder, lexical: LexicalFeatureEncoder
) -> None:
    index = FakeIndex()
    stale = indexed(2, "Heroes (2017 Remaster)", "David Bowie")
    index.stale = [stale]

    assert await PrepareSearchIndex(embedder, lexical, index)() == 1

    _, vectors = index.points[stale.isrc]
    text = stored_track_text(stale)
    assert (text.title, text.version, text.album_title) == ("Heroes (2017 Remaster)", None, None)
    assert vectors == track_vectors(embedder, lexical, text)
    assert await PrepareSearchIndex(embedder, lexical, index)() == 0
