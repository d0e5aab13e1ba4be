"""What the worker writes and what a search asks for: a track's or a query's dense and lexical
vectors, shared by IngestTrack, SearchTracks and PrepareSearchIndex."""

from __future__ import annotations

from application.ports.embedder import Embedder, LexicalEncoder, TrackText
from application.ports.track_index import IndexedTrack, TrackQuery, TrackVectors


def track_vectors(embedder: Embedder, lexical: LexicalEncoder, track: TrackText) -> TrackVectors:
    return TrackVectors(
        dense=tuple(embedder.embed_track(track)), lexical=lexical.encode_track(track)
    )


def query_of(embedder: Embedder, lexical: LexicalEncoder, text: str) -> TrackQuery | None:
    """The hybrid query for `text`, each ranking with its encoder's floor; None when neither
    encoder finds anything in it (punctuation only, say)."""
    dense = embedder.embed_query(text)
    sparse = lexical.encode_query(text)
    if not any(dense) and sparse.is_empty:
        return None
    return TrackQuery(
        dense=tuple(dense),
        lexical=None if sparse.is_empty else sparse,
        dense_floor=embedder.match_floor,
        lexical_floor=lexical.match_floor,
    )


def stored_track_text(track: IndexedTrack) -> TrackText:
    """A track as the index's payload holds it: the title with its version folded in, the
    artists, and no album title (the payload has its id only)."""
    return TrackText(
        title=track.title, version=None, artist_names=track.artist_names, album_title=None
    )
