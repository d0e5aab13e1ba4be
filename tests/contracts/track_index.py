"""The TrackIndex port's contract: one point per ISRC, `indexed` answering which ISRCs are held,
`search` nearest first, and IndexUnavailable for every failure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from application.ports.track_index import IndexedTrack, IndexUnavailable, TrackIndex
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


def unit(*components: float) -> list[float]:
    norm = math.sqrt(sum(c * c for c in components))
    return [c / norm for c in components]


class TrackIndexContract:
    """Subclass as `Test<Adapter>TrackIndexContract` with two fixtures: `index`, an empty
    index of vectors of DIMENSION components, ready to use; and `unavailable_index`, the
    adapter with whatever it talks to down."""

    async def test_nothing_is_indexed_in_an_empty_index(self, index: TrackIndex) -> None:
        assert await index.indexed([isrc(1), isrc(2)]) == set()

    async def test_indexed_of_no_isrcs_is_nothing(self, index: TrackIndex) -> None:
        assert await index.indexed([]) == set()

    async def test_an_upserted_isrc_is_indexed_and_no_other(self, index: TrackIndex) -> None:
        await index.upsert(track(1), unit(1, 0, 0, 0))
        await index.upsert(track(2), unit(0, 1, 0, 0))

        assert await index.indexed([isrc(1), isrc(2), isrc(3)]) == {isrc(1), isrc(2)}

    async def test_an_isrc_asked_for_twice_is_answered_once(self, index: TrackIndex) -> None:
        await index.upsert(track(1), unit(1, 0, 0, 0))

        assert await index.indexed([isrc(1), isrc(1)]) == {isrc(1)}

    async def test_asking_again_gives_the_same_answer(self, index: TrackIndex) -> None:
        await index.upsert(track(1), unit(1, 0, 0, 0))
        asked: Sequence[Isrc] = [isrc(1), isrc(2)]

        assert await index.indexed(asked) == await index.indexed(asked)

    async def test_upserting_a_track_again_overwrites_its_one_point(
        self, index: TrackIndex
    ) -> None:
        await index.upsert(track(1, title="Old title"), unit(1, 0, 0, 0))
        await index.upsert(track(1, title="New title"), unit(1, 0, 0, 0))

        hits = await index.search(unit(1, 0, 0, 0), limit=10)

        assert [(hit.isrc, hit.title) for hit in hits] == [(isrc(1), "New title")]

    async def test_search_returns_the_nearest_tracks_first_up_to_the_limit(
        self, index: TrackIndex
    ) -> None:
        await index.upsert(track(1, title="Far"), unit(0, 0, 0, 1))
        await index.upsert(track(2, title="Nearest"), unit(1, 0.1, 0, 0))
        await index.upsert(track(3, title="Near"), unit(1, 1, 0, 0))

        hits = await index.search(unit(1, 0, 0, 0), limit=2)

        assert [hit.title for hit in hits] == ["Nearest", "Near"]
        assert hits[0].score >= hits[1].score
        nearest = hits[0]
        assert (nearest.isrc, nearest.track_id, nearest.artist_names) == (
            isrc(2),
            CatalogId("5002"),
            ("The Beatles",),
        )

    async def test_search_in_an_empty_index_finds_nothing(self, index: TrackIndex) -> None:
        assert await index.search(unit(1, 0, 0, 0), limit=5) == []

    async def test_every_call_to_an_index_that_is_down_raises_index_unavailable(
        self, unavailable_index: TrackIndex
    ) -> None:
        with pytest.raises(IndexUnavailable):
            await unavailable_index.indexed([isrc(1)])
        with pytest.raises(IndexUnavailable):
            await unavailable_index.upsert(track(1), unit(1, 0, 0, 0))
        with pytest.raises(IndexUnavailable):
            await unavailable_index.search(unit(1, 0, 0, 0), limit=5)
