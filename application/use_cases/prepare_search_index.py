from __future__ import annotations

from application.ports.embedder import Embedder, LexicalEncoder
from application.ports.track_index import IndexedTrack, TrackIndex, TrackVectors
from application.use_cases.vectors import stored_track_text, track_vectors


class PrepareSearchIndex:
    """Readies the search index for this configuration's vectors at start-up: the index creates
    its collection when missing, and when it holds points written with other vectors (another
    embedder, or the single-vector schema before the hybrid one) it writes each point again,
    vectorised from its payload (title, version and artists; the album title is not in the
    payload, so a rewritten point lacks it until the track is ingested again). Returns how
    many points were written again. Idempotent; raises IndexUnavailable."""

    def __init__(self, embedder: Embedder, lexical: LexicalEncoder, index: TrackIndex) -> None:
        self._embedder = embedder
        self._lexical = lexical
        self._index = index

    async def __call__(self) -> int:
        return await self._index.prepare(self._vectorise)

    def _vectorise(self, track: IndexedTrack) -> TrackVectors:
        return track_vectors(self._embedder, self._lexical, stored_track_text(track))
