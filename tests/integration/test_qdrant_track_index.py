"""The Qdrant adapter: local mode for the normal cases (the same client code as production,
minus the transport), and server mode against a loopback Qdrant for every failure, each of
which must read as IndexUnavailable within the deadline."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from qdrant_client import QdrantClient, models

from adapters.qdrant import track_index as track_index_module
from adapters.qdrant.track_index import QdrantTrackIndex, payload_of
from application.ports.track_index import IndexedTrack, IndexUnavailable, TrackQuery, TrackVectors
from domain.values import CatalogId, Isrc
from tests.contracts import track_index as contract
from tests.contracts.track_index import TrackIndexContract
from tests.support.logs import logs_of
from tests.support.loopback_qdrant import LoopbackQdrant, QdrantMode

DIMENSION = 4
COLLECTION = "tracks"
LOOKUP_DEADLINE_S = 0.3
WITHIN_DEADLINE_S = 3.0
INDEXED_AT = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


def isrc(n: int) -> Isrc:
    return Isrc(f"GBAYE{n:07d}")


def track(n: int, title: str = "Come Together", album: str | None = "77646168") -> IndexedTrack:
    return IndexedTrack(
        isrc=isrc(n),
        track_id=CatalogId(str(5000 + n)),
        title=title,
        artist_names=("The Beatles",),
        album_id=CatalogId(album) if album else None,
        indexed_at=INDEXED_AT,
    )


def unit(*components: float) -> TrackVectors:
    norm = math.sqrt(sum(c * c for c in components))
    return TrackVectors(dense=tuple(c / norm for c in components), lexical=contract.NO_WORDS)


def refuse_rewrite(track: IndexedTrack) -> TrackVectors:
    raise AssertionError(f"nothing should be rewritten: {track}")


@pytest.fixture
async def local_index() -> AsyncIterator[QdrantTrackIndex]:
    index = QdrantTrackIndex(path=":memory:", vector_size=DIMENSION, collection=COLLECTION)
    await index.start()
    await index.prepare(refuse_rewrite)
    yield index
    await index.close()


@pytest.fixture
def loopback_qdrant() -> Iterator[LoopbackQdrant]:
    with LoopbackQdrant(collection=COLLECTION) as qdrant:
        yield qdrant


@pytest.fixture
async def server_index(loopback_qdrant: LoopbackQdrant) -> AsyncIterator[QdrantTrackIndex]:
    index = QdrantTrackIndex(
        url=loopback_qdrant.url,
        vector_size=DIMENSION,
        collection=COLLECTION,
        lookup_deadline_s=LOOKUP_DEADLINE_S,
        operation_deadline_s=1.0,
    )
    await index.start()
    yield index
    await index.close()


# -- the port's contract -----------------------------------------------------------------------


class TestQdrantTrackIndexContract(TrackIndexContract):
    """Local mode for what works; server mode against a loopback Qdrant that is down for the
    outage (local mode has no server to lose)."""

    @pytest.fixture
    async def index(self) -> AsyncIterator[QdrantTrackIndex]:
        index = QdrantTrackIndex(path=":memory:", vector_size=contract.DIMENSION)
        await index.start()
        await index.prepare(refuse_rewrite)
        yield index
        await index.close()

    @pytest.fixture
    async def unavailable_index(
        self, loopback_qdrant: LoopbackQdrant
    ) -> AsyncIterator[QdrantTrackIndex]:
        index = QdrantTrackIndex(
            url=loopback_qdrant.url,
            vector_size=contract.DIMENSION,
            collection=COLLECTION,
            lookup_deadline_s=LOOKUP_DEADLINE_S,
            operation_deadline_s=1.0,
        )
        await index.start()
        loopback_qdrant.set_mode(QdrantMode.DOWN)
        yield index
        await index.close()


# -- local mode --------------------------------------------------------------------------------


async def test_indexed_beyond_one_batch_finds_the_isrcs_in_every_batch() -> None:
    index = QdrantTrackIndex(path=":memory:", vector_size=DIMENSION, lookup_batch=3)
    await index.start()
    try:
        await index.prepare(refuse_rewrite)
        for n in (0, 4, 9):
            await index.upsert(track(n), unit(1, 1, 0, 0))

        found = await index.indexed([isrc(n) for n in range(10)])

        assert found == {isrc(0), isrc(4), isrc(9)}
    finally:
        await index.close()


async def test_upserting_a_track_twice_keeps_one_point_whose_payload_is_exactly_the_contract(
    tmp_path: Path,
) -> None:
    storage = tmp_path / "qdrant"
    index = QdrantTrackIndex(path=storage, vector_size=DIMENSION, collection=COLLECTION)
    await index.start()
    await index.prepare(refuse_rewrite)
    await index.upsert(track(7, title="Something (2009 Remaster)"), unit(1, 0, 0, 0))
    await index.upsert(track(7, title="Something", album=None), unit(0, 1, 0, 0))
    await index.close()

    # Read the stored points with the plain client, as another service sharing the index would.
    reader = QdrantClient(path=str(storage))
    try:
        points, _ = reader.scroll(COLLECTION, limit=10, with_payload=True)
    finally:
        reader.close()

    assert [(str(point.id), point.payload) for point in points] == [
        (
            isrc(7).point_id,
            {
                "isrc": "GBAYE0000007",
                "trackId": "5007",
                "title": "Something",
                "artistNames": ["The Beatles"],
                "albumId": None,
                "indexedAt": "2026-11-28T09:30:00+00:00",
            },
        )
    ]


async def test_a_local_index_is_found_again_after_reopening_its_folder(tmp_path: Path) -> None:
    first = QdrantTrackIndex(path=tmp_path / "qdrant", vector_size=DIMENSION)
    await first.start()
    await first.prepare(refuse_rewrite)
    await first.upsert(track(1), unit(1, 0, 0, 0))
    await first.close()

    second = QdrantTrackIndex(path=tmp_path / "qdrant", vector_size=DIMENSION)
    await second.start()
    try:
        assert await second.indexed([isrc(1), isrc(2)]) == {isrc(1)}
    finally:
        await second.close()


async def test_concurrent_writes_and_lookups_in_local_mode_all_take_effect(
    local_index: QdrantTrackIndex,
) -> None:
    # Local mode is not thread-safe: the adapter must serialize what the event loop overlaps.
    await asyncio.gather(
        *(local_index.upsert(track(n), unit(1, n, 0, 0)) for n in range(40)),
        *(local_index.indexed([isrc(n)]) for n in range(40)),
    )

    assert await local_index.indexed([isrc(n) for n in range(50)]) == {isrc(n) for n in range(40)}


async def test_a_missing_local_collection_reads_as_unavailable() -> None:
    index = QdrantTrackIndex(path=":memory:", vector_size=DIMENSION, collection="never-created")
    await index.start()
    try:
        with pytest.raises(IndexUnavailable):
            await index.indexed([isrc(1)])
    finally:
        await index.close()


async def test_the_first_upsert_creates_a_missing_local_collection() -> None:
    index = QdrantTrackIndex(path=":memory:", vector_size=DIMENSION)
    await index.start()
    try:
        await index.upsert(track(1), unit(1, 0, 0, 0))

        assert await index.indexed([isrc(1)]) == {isrc(1)}
    finally:
        await index.close()


async def test_a_vector_of_the_wrong_dimension_is_a_caller_error_not_an_outage(
    local_index: QdrantTrackIndex,
) -> None:
    with pytest.raises(ValueError, match="dimensions"):
        await local_index.upsert(track(1), TrackVectors((1.0, 0.0), contract.NO_WORDS))


async def test_an_index_used_before_start_is_unavailable() -> None:
    index = QdrantTrackIndex(path=":memory:", vector_size=DIMENSION)

    with pytest.raises(IndexUnavailable):
        await index.indexed([isrc(1)])


# -- server mode, against the loopback Qdrant -------------------------------------------------


async def test_indexed_asks_the_server_in_one_retrieve_per_thousand_ids(
    server_index: QdrantTrackIndex, loopback_qdrant: LoopbackQdrant
) -> None:
    candidates = [isrc(n) for n in range(2500)]
    held = set(candidates[::7])
    loopback_qdrant.add_points(i.point_id for i in held)

    found = await server_index.indexed(candidates)

    assert found == held
    requests = loopback_qdrant.retrieve_requests
    assert [len(ids) for ids in requests] == [1000, 1000, 500]
    assert sorted(point_id for ids in requests for point_id in ids) == sorted(
        i.point_id for i in candidates
    )


async def test_indexed_asks_once_for_an_isrc_given_twice(
    server_index: QdrantTrackIndex, loopback_qdrant: LoopbackQdrant
) -> None:
    loopback_qdrant.add_points([isrc(1).point_id])

    assert await server_index.indexed([isrc(1), isrc(2), isrc(1)]) == {isrc(1)}
    assert loopback_qdrant.retrieve_requests == [[isrc(1).point_id, isrc(2).point_id]]


@pytest.mark.parametrize(
    "mode",
    [
        pytest.param(QdrantMode.DOWN, id="connection refused"),
        pytest.param(QdrantMode.SLOW, id="slower than the deadline"),
        pytest.param(QdrantMode.SERVER_ERROR, id="500"),
        pytest.param(QdrantMode.RATE_LIMITED, id="429 with Retry-After"),
        pytest.param(QdrantMode.NON_JSON, id="a non-JSON 200 body"),
        pytest.param(QdrantMode.MISSING_COLLECTION, id="a missing collection"),
    ],
)
async def test_every_failure_of_the_server_is_index_unavailable_within_the_deadline(
    server_index: QdrantTrackIndex, loopback_qdrant: LoopbackQdrant, mode: QdrantMode
) -> None:
    loopback_qdrant.add_points([isrc(1).point_id])
    loopback_qdrant.set_mode(mode, delay_s=5.0)

    started = time.monotonic()
    with pytest.raises(IndexUnavailable):
        await server_index.indexed([isrc(1), isrc(2)])

    assert time.monotonic() - started < WITHIN_DEADLINE_S


async def test_the_index_answers_again_once_the_server_is_back(
    server_index: QdrantTrackIndex, loopback_qdrant: LoopbackQdrant
) -> None:
    loopback_qdrant.add_points([isrc(1).point_id])
    loopback_qdrant.set_mode(QdrantMode.DOWN)
    with pytest.raises(IndexUnavailable):
        await server_index.indexed([isrc(1)])

    loopback_qdrant.set_mode(QdrantMode.NORMAL)

    assert await server_index.indexed([isrc(1), isrc(2)]) == {isrc(1)}


async def test_writes_and_collection_setup_against_a_failing_server_are_unavailable(
    server_index: QdrantTrackIndex, loopback_qdrant: LoopbackQdrant
) -> None:
    loopback_qdrant.set_mode(QdrantMode.SERVER_ERROR)

    with pytest.raises(IndexUnavailable):
        await server_index.upsert(track(1), unit(1, 0, 0, 0))
    with pytest.raises(IndexUnavailable):
        await server_index.search(contract.near(1, 0, 0, 0), limit=3)
    with pytest.raises(IndexUnavailable):
        await server_index.prepare(refuse_rewrite)


# -- a collection written with other vectors (ADR 0030) ------------------------------------------


def vectorise_from_title(track: IndexedTrack) -> TrackVectors:
    """A stand-in embedder: the dense vector says whether the title is 'Something'."""
    dense = (1.0, 0.0, 0.0, 0.0) if track.title == "Something" else (0.0, 1.0, 0.0, 0.0)
    return TrackVectors(dense=dense, lexical=contract.sparse(f7=1.0))


async def test_prepare_rewrites_a_single_vector_collection_from_its_payloads(
    tmp_path: Path,
) -> None:
    storage = tmp_path / "qdrant"
    # The schema before ADR 0030: one unnamed vector per point.
    before = QdrantClient(path=str(storage))
    before.create_collection(
        COLLECTION, vectors_config=models.VectorParams(size=8, distance=models.Distance.COSINE)
    )
    kept = payload_of(track(1, title="Something"))
    before.upsert(
        COLLECTION,
        points=[
            models.PointStruct(id=isrc(1).point_id, vector=[1.0] * 8, payload=kept),
            # Another writer's point: nothing to vectorise it from, so it is left out.
            models.PointStruct(id=isrc(2).point_id, vector=[1.0] * 8, payload={"x": 1}),
        ],
    )
    before.close()

    index = QdrantTrackIndex(path=storage, vector_size=DIMENSION, collection=COLLECTION)
    await index.start()
    try:
        with logs_of(track_index_module, "logger") as logs:
            rewritten = await index.prepare(vectorise_from_title)

        assert rewritten == 1
        assert await index.indexed([isrc(1), isrc(2)]) == {isrc(1)}
        hits = await index.search(contract.near(1, 0, 0, 0), limit=5)
        assert [(hit.isrc, hit.title) for hit in hits] == [(isrc(1), "Something")]
        words = TrackQuery(dense=contract.unit(0, 0, 1, 0), lexical=contract.sparse(f7=1.0))
        assert [hit.isrc for hit in await index.search(words, limit=5)] == [isrc(1)]
        events = [entry["event"] for entry in logs]
        assert "qdrant.collection_holds_other_vectors" in events
        assert "qdrant.collection_rewritten" in events
        assert await index.prepare(refuse_rewrite) == 0  # idempotent: the schema now matches
    finally:
        await index.close()

    reader = QdrantClient(path=str(storage))
    try:
        [point], _ = reader.scroll(COLLECTION, with_payload=True)
    finally:
        reader.close()
    assert point.payload == kept  # the payload of the contract, as it was


async def test_prepare_rewrites_the_points_when_the_embedder_changes(tmp_path: Path) -> None:
    storage = tmp_path / "qdrant"
    first = QdrantTrackIndex(path=storage, vector_size=DIMENSION, dense_vector="model-a")
    await first.start()
    await first.prepare(refuse_rewrite)
    await first.upsert(track(1, title="Something"), unit(0, 0, 0, 1))
    await first.close()

    second = QdrantTrackIndex(path=storage, vector_size=DIMENSION, dense_vector="model-b")
    await second.start()
    try:
        assert await second.prepare(vectorise_from_title) == 1
        hits = await second.search(contract.near(1, 0, 0, 0), limit=5)
        assert [hit.isrc for hit in hits] == [isrc(1)]
    finally:
        await second.close()


async def test_a_dense_vector_of_another_size_is_rewritten_too(tmp_path: Path) -> None:
    storage = tmp_path / "qdrant"
    first = QdrantTrackIndex(path=storage, vector_size=2)
    await first.start()
    await first.prepare(refuse_rewrite)
    await first.upsert(track(1), TrackVectors((1.0, 0.0), contract.NO_WORDS))
    await first.close()

    second = QdrantTrackIndex(path=storage, vector_size=DIMENSION)
    await second.start()
    try:
        assert await second.prepare(vectorise_from_title) == 1
    finally:
        await second.close()


async def test_preparing_against_a_server_that_hangs_gives_up_within_the_operation_deadline(
    server_index: QdrantTrackIndex, loopback_qdrant: LoopbackQdrant
) -> None:
    # The start waits on prepare: a hanging server must not hold it past the usual deadline
    # (1 s here), however long a rewrite's steps may take.
    loopback_qdrant.set_mode(QdrantMode.SLOW, delay_s=5.0)
    started = time.perf_counter()

    with pytest.raises(IndexUnavailable):
        await server_index.prepare(refuse_rewrite)

    assert time.perf_counter() - started < WITHIN_DEADLINE_S
