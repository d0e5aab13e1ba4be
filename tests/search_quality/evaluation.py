"""Runs the labelled query set against a search configuration: the tracks written through the
Qdrant adapter (local mode, in memory) and every query asked as the service asks it, then
scored per kind. Shared by tests/search_quality/test_search_quality.py and
bench/search_quality.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from adapters.embedding.hashing import HashingEmbedder
from adapters.embedding.lexical import LexicalFeatureEncoder
from adapters.embedding.wordllama import WordLlamaEmbedder
from adapters.qdrant.track_index import MEMORY, QdrantTrackIndex
from application.ports.embedder import Embedder, LexicalEncoder
from application.ports.track_index import IndexedTrack, TrackQuery, TrackVectors
from application.use_cases.search_tracks import SearchTracks, SearchTracksCommand
from application.use_cases.vectors import track_vectors
from domain.values import CatalogId, Isrc
from tests.search_quality.labelled import (
    KINDS,
    KindScore,
    LabelledQuery,
    LabelledTrack,
    catalogue,
    queries,
    score,
)

INDEXED_AT = datetime(2026, 12, 1, tzinfo=UTC)
TOP = 10


@dataclass(frozen=True, slots=True)
class Configuration:
    """How a search is made: `hybrid` fuses the dense ranking with the lexical one (the
    service's SearchTracks); otherwise the dense vector alone, cut at the embedder's floor when
    `floor`, as the search was before ADR 0030 without it."""

    name: str
    embedder: Embedder
    hybrid: bool
    floor: bool = True


def configurations(model: Embedder | None = None) -> list[Configuration]:
    """Before (hashing, no floor), the model alone, the hybrid, and the hybrid on the fallback."""
    model = model or WordLlamaEmbedder()
    hashing = HashingEmbedder()
    return [
        Configuration("hashing (before)", hashing, hybrid=False, floor=False),
        Configuration("model (WordLlama)", model, hybrid=False),
        Configuration("hybrid (WordLlama + lexical)", model, hybrid=True),
        Configuration("hybrid on the fallback (hashing + lexical)", hashing, hybrid=True),
    ]


def _refuse_rewrite(track: IndexedTrack) -> TrackVectors:
    raise AssertionError("a new collection has nothing to rewrite")


async def answers(
    configuration: Configuration,
    tracks: Sequence[LabelledTrack],
    asked: Sequence[LabelledQuery],
    lexical: LexicalEncoder | None = None,
) -> list[tuple[LabelledQuery, list[Isrc]]]:
    """The ISRCs each query finds, best first, at most TOP."""
    embedder = configuration.embedder
    lexical = lexical or LexicalFeatureEncoder()
    index = QdrantTrackIndex(
        path=MEMORY,
        vector_size=embedder.dimension,
        dense_vector=embedder.space,
        lexical_vector=lexical.space,
    )
    await index.start()
    try:
        await index.prepare(_refuse_rewrite)
        for track in tracks:
            await index.upsert(
                IndexedTrack(
                    isrc=track.isrc,
                    track_id=CatalogId(track.track_id),
                    title=track.text.title,
                    artist_names=track.text.artist_names,
                    album_id=None,
                    indexed_at=INDEXED_AT,
                ),
                track_vectors(embedder, lexical, track.text),
            )
        search = SearchTracks(embedder, lexical, index)
        found: list[tuple[LabelledQuery, list[Isrc]]] = []
        for query in asked:
            if configuration.hybrid:
                hits = await search(SearchTracksCommand(query.text, limit=TOP))
            else:
                dense = TrackQuery(
                    dense=tuple(embedder.embed_query(query.text)),
                    dense_floor=embedder.match_floor if configuration.floor else None,
                )
                hits = await index.search(dense, TOP)
            found.append((query, [hit.isrc for hit in hits]))
        return found
    finally:
        await index.close()


# The kinds derived from the catalogue, one query per title or artist: hundreds each.
DERIVED_KINDS = frozenset({"exact", "artist", "typo"})


async def evaluate(
    configuration: Configuration, *, every: int = 1, every_written: int = 1
) -> list[KindScore]:
    """Scores per kind over the whole set, or over every `every`-th query of the derived kinds
    and every `every_written`-th of the hand-written ones: the same tracks, fewer queries."""
    tracks = catalogue()
    asked = [
        query
        for kinds_nth, query in _numbered(queries(tracks))
        if kinds_nth % (every if query.kind in DERIVED_KINDS else every_written) == 0
    ]
    found = await answers(configuration, tracks, asked)
    return [score(kind, [(q, hits) for q, hits in found if q.kind == kind]) for kind in KINDS]


def _numbered(labelled: Sequence[LabelledQuery]) -> list[tuple[int, LabelledQuery]]:
    """Each query with its position among the queries of its kind."""
    seen: dict[str, int] = {}
    numbered = []
    for query in labelled:
        numbered.append((seen.get(query.kind, 0), query))
        seen[query.kind] = seen.get(query.kind, 0) + 1
    return numbered
