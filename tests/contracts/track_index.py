"""The TrackIndex port's contract: one point per ISRC, `indexed` answering which ISRCs are held,
`search` nearest first, and IndexUnavailable for every failure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from application.ports.embedder import SparseVector
from application.ports.track_index import (
    IndexedTrack,
    IndexUnavailable,
    TrackIndex,
    TrackQuery,
    TrackVectors,
)
from domain.values import CatalogId, Isrc

# The vectors below have this many components; an adapter under test is built for it.
DIMENSION = 4
INDEXED_AT = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


def isrc(n: int) -> Isrc:
    return Isrc(f"QZCTR{n:07d}")


def track(n: int, title: str = "Come Together") -> IndexedTrack:
    return IndexedTrack(
        isrc=isrc(n),
        track_id=CatalogId(str(5000 + n)),
        title=title,
        artist_names=("The Beatles",),
        album_id=CatalogId("77646168"),
        indexed_at=INDEXED_AT,
    )


def unit(*components: float) -> tuple[float, ...]:
    norm = math.sqrt(sum(c * c for c in components))
    return tuple(c / norm for c in components)


def sparse(**weights: float) -> SparseVector:
    """A unit sparse vector over features named f0, f1, ... (index = the number)."""
    norm = math.sqrt(sum(w * w for w in weights.values()))
    ordered = sorted((int(name[1:]), w / norm) for name, w in weights.items())
    return SparseVector(tuple(i for i, _ in ordered), tuple(w for _, w in ordered))


NO_WORDS = sparse(f999=1.0)


def vectors(*dense: float, lexical: SparseVector = NO_WORDS) -> TrackVectors:
    return TrackVectors(dense=unit(*dense), lexical=lexical)


def near(*dense: float) -> TrackQuery:
    return TrackQuery(dense=unit(*dense))


class TrackIndexContract:
    """Subclass as `Test<Adapter>TrackIndexContract` with two fixtures: `index`, an empty
    index of vectors of DIMENSION components, ready to use; and `unavailable_index`, the
    adapter with whatever it talks to down."""

    async def test_nothing_is_indexed_in_an_empty_index(self, index: TrackIndex) -> None:
        assert await index.indexed([isrc(1), isrc(2)]) == set()

    async def test_indexed_of_no_isrcs_is_nothing(self, index: TrackIndex) -> None:
        assert await index.indexed([]) == set()

    async def test_an_upserted_isrc_is_indexed_and_no_other(self, index: TrackIndex) -> None:
        await index.upsert(track(1), vectors(1, 0, 0, 0))
        await index.upsert(track(2), vectors(0, 1, 0, 0))

        assert await index.indexed([isrc(1), isrc(2), isrc(3)]) == {isrc(1), isrc(2)}

    async def test_an_isrc_asked_for_twice_is_answered_once(self, index: TrackIndex) -> None:
        await index.upsert(track(1), vectors(1, 0, 0, 0))

        assert await index.indexed([isrc(1), isrc(1)]) == {isrc(1)}

    async def test_asking_again_gives_the_same_answer(self, index: TrackIndex) -> None:
        await index.upsert(track(1), vectors(1, 0, 0, 0))
        asked: Sequence[Isrc] = [isrc(1), isrc(2)]

        assert await index.indexed(asked) == await index.indexed(asked)

    async def test_upserting_a_track_again_overwrites_its_one_point(
        self, index: TrackIndex
    ) -> None:
        await index.upsert(track(1, title="Old title"), vectors(1, 0, 0, 0))
        await index.upsert(track(1, title="New title"), vectors(1, 0, 0, 0))

        hits = await index.search(near(1, 0, 0, 0), limit=10)

        assert [(hit.isrc, hit.title) for hit in hits] == [(isrc(1), "New title")]

    async def test_search_returns_the_nearest_tracks_first_up_to_the_limit(
        self, index: TrackIndex
    ) -> None:
        await index.upsert(track(1, title="Far"), vectors(0, 0, 0, 1))
        await index.upsert(track(2, title="Nearest"), vectors(1, 0.1, 0, 0))
        await index.upsert(track(3, title="Near"), vectors(1, 1, 0, 0))

        hits = await index.search(near(1, 0, 0, 0), limit=2)

        assert [hit.title for hit in hits] == ["Nearest", "Near"]
        assert hits[0].score >= hits[1].score
        nearest = hits[0]
        assert (nearest.isrc, nearest.track_id, nearest.artist_names) == (
            isrc(2),
            CatalogId("5002"),
            ("The Beatles",),
        )

    async def test_search_in_an_empty_index_finds_nothing(self, index: TrackIndex) -> None:
        assert await index.search(near(1, 0, 0, 0), limit=5) == []

    async def test_a_dense_search_leaves_out_what_scores_at_or_below_its_floor(
        self, index: TrackIndex
    ) -> None:
        await index.upsert(track(1, title="Close"), vectors(1, 0.2, 0, 0))
        await index.upsert(track(2, title="Unrelated"), vectors(0.2, 1, 0, 0))

        hits = await index.search(TrackQuery(dense=unit(1, 0, 0, 0), dense_floor=0.5), limit=5)

        assert [hit.title for hit in hits] == ["Close"]

    async def test_a_hybrid_search_that_clears_neither_floor_finds_nothing(
        self, index: TrackIndex
    ) -> None:
        await index.upsert(track(1), vectors(0, 1, 0, 0, lexical=sparse(f1=1.0)))

        query = TrackQuery(
            dense=unit(1, 0, 0, 0), lexical=sparse(f2=1.0), dense_floor=0.5, lexical_floor=0.1
        )

        assert await index.search(query, limit=5) == []

    async def test_a_hybrid_search_finds_a_track_by_its_words_alone(
        self, index: TrackIndex
    ) -> None:
        await index.upsert(track(1, title="Other"), vectors(1, 0, 0, 0, lexical=sparse(f1=1.0)))
        await index.upsert(track(2, title="Spelled"), vectors(0, 1, 0, 0, lexical=sparse(f2=1.0)))

        query = TrackQuery(
            dense=unit(0, 0, 1, 0), lexical=sparse(f2=1.0), dense_floor=0.5, lexical_floor=0.1
        )

        assert [hit.title for hit in await index.search(query, limit=5)] == ["Spelled"]

    async def test_a_hybrid_search_ranks_first_the_track_first_in_both_rankings(
        self, index: TrackIndex
    ) -> None:
        await index.upsert(
            track(1, title="Both"), vectors(1, 0.1, 0, 0, lexical=sparse(f1=1.0, f2=0.2))
        )
        await index.upsert(track(2, title="Meaning"), vectors(1, 0.5, 0, 0, lexical=sparse(f3=1.0)))
        await index.upsert(
            track(3, title="Words"), vectors(0, 0, 1, 0, lexical=sparse(f1=1.0, f3=0.5))
        )

        query = TrackQuery(
            dense=unit(1, 0, 0, 0), lexical=sparse(f1=1.0), dense_floor=0.0, lexical_floor=0.0
        )
        hits = await index.search(query, limit=3)

        assert hits[0].title == "Both"
        assert {hit.title for hit in hits} == {"Both", "Meaning", "Words"}
        assert hits[0].score > hits[1].score >= hits[2].score

    async def test_every_call_to_an_index_that_is_down_raises_index_unavailable(
        self, unavailable_index: TrackIndex
    ) -> None:
        with pytest.raises(IndexUnavailable):
            await unavailable_index.indexed([isrc(1)])
        with pytest.raises(IndexUnavailable):
            await unavailable_index.upsert(track(1), vectors(1, 0, 0, 0))
        with pytest.raises(IndexUnavailable):
            await unavailable_index.search(near(1, 0, 0, 0), limit=5)
